"""Kernel clients: the asyncio client, a blocking client, and a client in its own thread.

There is one implementation, :class:`~kernel_mgmt.client_base.KernelClient` (asyncio,
``zmq.asyncio``). ``AsyncKernelClient`` and ``IOLoopKernelClient`` (the seed's name) are the
same class. :class:`BlockingKernelClient` drives an asyncio client on a private event loop in a
daemon thread, so it works from plain scripts and equally inside an already-running loop (a
Jupyter cell, pytest-asyncio). The loop thread reads every socket and runs handlers; requests
are sent straight from the caller's thread (socket use is serialised by a lock), so a blocking
round trip costs one thread hop, not two. Its timeouts raise the builtin :class:`TimeoutError`.

The loop thread is :mod:`kernel_mgmt.client_loop`'s; :class:`ClientInThread` (the seed's client
in a thread of its own) is :mod:`kernel_mgmt.client_in_thread`'s, re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from kernel_mgmt.client_base import (
    HANDLER_CHANNELS,
    ConnectionInfoError,
    KernelClient,
    KernelDied,
    ReplyFuture,
    connection_info_from,
    default_output_hook,
    run_in_daemon_thread,
)
from kernel_mgmt.protocol import Message

from .client_in_thread import ClientInThread
from .client_loop import LoopThread, _ThreadWaiter

__all__ = [
    "HANDLER_CHANNELS",
    "AsyncKernelClient",
    "BlockingKernelClient",
    "ClientInThread",
    "ConnectionInfoError",
    "IOLoopKernelClient",
    "KernelClient",
    "KernelDied",
    "LoopThread",
    "ReplyFuture",
    "default_output_hook",
]

log = logging.getLogger("kernel_mgmt.client")


#: The asyncio client under the names applications know it by.
AsyncKernelClient = KernelClient
IOLoopKernelClient = KernelClient


def _blocking(name: str) -> Callable[..., Any]:
    """Make a blocking method from the asyncio client's request method *name*.

    The request is built and sent from the caller's thread (the client serialises socket
    use with a lock), and the reply comes back through a :class:`_ThreadWaiter` that the
    loop thread's receive callback resolves: one thread hop per request, and no coroutine,
    Task or future. Requests needing asyncio machinery (execute's interrupt/idle options)
    are started on the loop thread instead; the caller still waits until they are sent, so
    one thread's requests reach the kernel in the order it made them.
    """
    async_method = getattr(KernelClient, name)
    what = f"{name} request"
    # execute()'s interrupt/idle options need the asyncio machinery (a task): use a future.
    needs_future = ("interrupt_timeout", "idle_timeout") if name == "execute" else ()

    def method(
        self: BlockingKernelClient,
        *args: Any,
        reply: bool = True,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        thread = self._thread
        if thread.in_thread():
            raise RuntimeError(
                f"blocking {what} called from the client's own event-loop thread (e.g. in a "
                "message handler) would deadlock; use the asyncio client there"
            )
        if not thread.alive:
            raise RuntimeError("the client's event loop is closed")
        client = self.loop_client
        waiter = _ThreadWaiter()
        if not any(kwargs.get(k) for k in needs_future):
            client._tls.waiter = waiter
            try:
                getattr(client, name)(*args, **kwargs)
            finally:
                client._tls.waiter = None
            if not reply:
                return waiter.jupyter_msg_id  # sent, in order with this thread's requests
        else:
            thread.call_soon(functools.partial(_start, client, name, args, kwargs, reply, waiter))
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            # Wait in slices so that a client closed meanwhile (its loop gone) cannot leave
            # us waiting forever; a reply still wakes us at once.
            while not waiter.wait(
                0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            ):
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"{what} timed out after {timeout} s")
                if not thread.alive:
                    raise RuntimeError(f"the client was closed while waiting for the {what}")
        except BaseException:  # TimeoutError, or KeyboardInterrupt in the caller
            with contextlib.suppress(RuntimeError):
                if waiter.source is not None:  # stops execute()'s interrupt/idle task too
                    thread.call_soon(waiter.source.cancel)
                elif waiter.jupyter_msg_id:  # forget it: a late reply finds nobody waiting
                    client._pending.pop(waiter.jupyter_msg_id, None)
            raise
        return waiter.result()

    functools.update_wrapper(method, async_method)
    method.__doc__ = (async_method.__doc__ or "").rstrip() + (
        "\n\n        Blocks until the reply arrives and returns it (``reply=False``: returns the"
        "\n        request's msg_id at once). ``timeout`` seconds → TimeoutError."
    )
    return method


def _start(
    client: KernelClient,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    reply: bool,
    waiter: _ThreadWaiter,
) -> None:
    """On the loop thread: start a request that needs asyncio; mirror it into *waiter*."""
    try:
        fut = getattr(client, name)(*args, **kwargs)
    except BaseException as e:
        waiter.set_exception(e)
        return
    if not reply:
        waiter.set_result(fut.jupyter_msg_id)
        return
    waiter.jupyter_msg_id = fut.jupyter_msg_id
    waiter.source = fut

    def copy(f: asyncio.Future[Any]) -> None:
        if f.cancelled():
            waiter.set_exception(asyncio.CancelledError())
        elif f.exception() is not None:
            waiter.set_exception(f.exception())  # type: ignore[arg-type]
        else:
            waiter.set_result(f.result())

    fut.add_done_callback(copy)


def _release(thread: LoopThread, client: KernelClient) -> None:
    """Close *client* and stop *thread* without waiting (runs at garbage collection)."""
    with contextlib.suppress(RuntimeError):  # loop already closed
        thread.call_soon(client.close)
        thread.call_soon(thread.loop.stop)


class BlockingKernelClient:
    """The kernel client for synchronous code: every request blocks until its reply.

    Same constructor and methods as :class:`KernelClient`; runs one on a private event loop
    thread. Each request method takes ``reply=True`` and ``timeout=None`` keywords. Message
    handlers and hooks run in that thread.
    """

    def __init__(
        self,
        connection_info: Mapping[str, Any] | str | os.PathLike[str],
        manager: Any = None,
        use_heartbeat: bool = True,
        *,
        _loop_thread: LoopThread | None = None,
    ) -> None:
        # Checked here, before a loop thread exists: a bad path or dict fails at once.
        connection_info = connection_info_from(connection_info)
        self._thread = _loop_thread or LoopThread()

        async def make() -> KernelClient:
            return KernelClient(connection_info, manager=manager, use_heartbeat=use_heartbeat)

        try:
            self.loop_client: KernelClient = self._thread.run(make(), 30, "client setup")
        except BaseException:
            self._thread.stop()
            raise
        # Dropped without close(): still close the sockets and end the loop thread.
        self._finalizer = weakref.finalize(self, _release, self._thread, self.loop_client)

    # -- attributes shared with the asyncio client ---------------------------------------------
    @property
    def connection_info(self) -> dict[str, Any]:
        return self.loop_client.connection_info

    @property
    def manager(self) -> Any:
        return self.loop_client.manager

    @property
    def owned_kernel(self) -> bool:
        """True if this client 'owns' the kernel, i.e. has its manager."""
        return self.loop_client.owned_kernel

    @property
    def kernel_info_dict(self) -> dict[str, Any] | None:
        """Kernel info, available after :meth:`wait_for_ready`."""
        return self.loop_client.kernel_info_dict

    @property
    def allow_stdin(self) -> bool:
        return self.loop_client.allow_stdin

    @allow_stdin.setter
    def allow_stdin(self, value: bool) -> None:
        self.loop_client.allow_stdin = value

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The private event loop the asyncio client runs on."""
        return self._thread.loop

    # -- requests -------------------------------------------------------------------------------
    execute = _blocking("execute")
    complete = _blocking("complete")
    inspect = _blocking("inspect")
    history = _blocking("history")
    kernel_info = _blocking("kernel_info")
    comm_info = _blocking("comm_info")
    is_complete = _blocking("is_complete")
    shutdown = _blocking("shutdown")

    def interrupt(self, _header: Mapping[str, Any] | None = None, timeout: float = 10.0) -> Any:
        """Interrupt the kernel (message or signal, per its interrupt_mode); see KernelClient."""
        coro = self.loop_client.interrupt(_header, timeout=timeout)
        return self._thread.run(coro, timeout + 5, "interrupt")

    def input(self, string: str, parent: Mapping[str, Any] | None = None) -> None:
        """Answer an input_request with *string*; callable from any thread, including hooks."""
        self._thread.call_soon(self.loop_client.input, string, parent)

    def wait_for_ready(self, timeout: float | None = 60.0) -> Message:
        """Block until the kernel is ready (see KernelClient.wait_for_ready)."""
        backstop = None if timeout is None else timeout + 5
        return self._thread.run(self.loop_client.wait_for_ready(timeout), backstop, "startup")

    def is_alive(self, timeout: float = 10.0) -> bool:
        """True while the kernel runs."""
        return self._thread.run(self.loop_client.is_alive(), timeout, "is_alive")

    def execute_interactive(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
        timeout: float | None = None,
        output_hook: Callable[[Message], Any] | None = None,
        stdin_hook: Callable[[Message], Any] | None = None,
        interrupt_timeout: float | None = None,
        idle_timeout: float | None = 4.0,
        raise_on_no_idle: bool = False,
    ) -> Message:
        """Execute *code*, printing its output and answering input() (see KernelClient).

        *output_hook* runs in the client's thread. *stdin_hook(msg)* runs in a thread of its
        own, so it may block (e.g. on a prompt); it returns the answer or calls :meth:`input`.
        """
        hook: Callable[[Message], Awaitable[Any]] | None = None
        if stdin_hook is not None:
            user_hook = stdin_hook

            def hook(msg: Message) -> Awaitable[Any]:
                return run_in_daemon_thread(user_hook, msg)

        coro = self.loop_client.execute_interactive(
            code,
            silent=silent,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=allow_stdin,
            stop_on_error=stop_on_error,
            timeout=timeout,
            output_hook=output_hook,
            stdin_hook=hook,
            interrupt_timeout=interrupt_timeout,
            idle_timeout=idle_timeout,
            raise_on_no_idle=raise_on_no_idle,
        )
        return self._thread.run(coro, None, "execute_interactive")

    def shutdown_or_terminate(self, timeout: float = 5.0) -> None:
        """Shut the kernel down, killing it if needed (see KernelClient.shutdown_or_terminate)."""
        coro = self.loop_client.shutdown_or_terminate(timeout)
        self._thread.run(coro, 3 * timeout + 15, "shutdown_or_terminate")

    def add_handler(self, handler: Callable[..., Any], channels: str | Iterable[str]) -> Any:
        """Call *handler* for messages on *channels*; it runs in the client's thread."""
        if self._thread.in_thread():
            return self.loop_client.add_handler(handler, channels)

        async def add() -> Any:
            return self.loop_client.add_handler(handler, channels)

        return self._thread.run(add(), 10, "add_handler")

    def remove_handler(
        self, handler: Callable[..., Any], channels: str | Iterable[str] | None = None
    ) -> None:
        """Stop calling *handler*."""
        if self._thread.in_thread():
            self.loop_client.remove_handler(handler, channels)
            return

        async def remove() -> None:
            self.loop_client.remove_handler(handler, channels)

        self._thread.run(remove(), 10, "remove_handler")

    def close(self) -> None:
        """Close the sockets and stop the client's thread."""
        if not self._thread.alive:
            return

        async def close() -> None:
            self.loop_client.close()

        try:
            self._thread.run(close(), 10, "close")
        finally:
            self._thread.stop()
            self._finalizer.detach()

    def __enter__(self) -> BlockingKernelClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
