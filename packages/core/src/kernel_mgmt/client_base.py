"""The asyncio kernel client: one socket per channel, replies routed to awaitables.

:class:`KernelClient` connects to a kernel's five channels with ``zmq.asyncio`` sockets and reads
them from event-loop reader callbacks (no task or future per message). Every request method
sends at once and returns an awaitable
(:class:`ReplyFuture`) that resolves to the reply :class:`~kernel_mgmt.protocol.Message`,
matched by the reply's ``parent_header.msg_id``. Handlers added with :meth:`add_handler` see
every message of the channels they asked for.

It never hangs on a dead kernel: for a kernel it owns (``manager`` given) the client watches
the process and fails every pending request with :class:`KernelDied` as soon as the process
exits; for other kernels it pings the heartbeat channel. Messages from the kernel that fail
signature checks are logged and dropped.

The class is assembled from one base per concern, each in the module named for it:
:mod:`~kernel_mgmt.client_channels` (sockets, reader callbacks, sending),
:mod:`~kernel_mgmt.client_routing` (replies to awaitables, idle waiters, handlers),
:mod:`~kernel_mgmt.client_lifecycle` (readiness, death detection, shutdown),
:mod:`~kernel_mgmt.client_interactive` (``execute_interactive`` and its hooks) and
:mod:`~kernel_mgmt.client_errors` (the errors). This module holds the construction, the
event-loop binding and the request methods of messaging spec 5.3; every name it held before
the split is still importable from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from kernel_mgmt.client_channels import (
    MAX_BATCH,
    RECONNECT_IVL_MS,
    REQUIRED_CONNECTION_KEYS,
    Channels,
    connection_info_from,
)
from kernel_mgmt.client_errors import (
    ConnectionInfoError,
    KernelDied,
    describe_exit,
    kernel_label,
)
from kernel_mgmt.client_interactive import (
    Interactive,
    default_output_hook,
    output_hook_for_environment,
    run_in_daemon_thread,
)
from kernel_mgmt.client_lifecycle import IOPUB_RETRY_S, Lifecycle
from kernel_mgmt.client_routing import (
    HANDLER_CHANNELS,
    MAX_IDLE_WAITERS,
    PENDING_PURGE,
    Done,
    ReplyFuture,
    Routing,
    _fail,
    _retrieve,
)
from kernel_mgmt.protocol import Message, Session

log = logging.getLogger("kernel_mgmt.client")

__all__ = [
    "HANDLER_CHANNELS",
    "IOPUB_RETRY_S",
    "MAX_BATCH",
    "MAX_IDLE_WAITERS",
    "PENDING_PURGE",
    "RECONNECT_IVL_MS",
    "REQUIRED_CONNECTION_KEYS",
    "ConnectionInfoError",
    "Done",
    "KernelClient",
    "KernelDied",
    "ReplyFuture",
    "connection_info_from",
    "default_output_hook",
    "describe_exit",
    "kernel_label",
    "output_hook_for_environment",
    "run_in_daemon_thread",
]


class KernelClient(Interactive, Lifecycle, Routing, Channels):
    """Talks to one kernel over ZeroMQ from an asyncio event loop.

    :param connection_info: the kernel's connection info (ports, ip, transport, key, ...),
        or the path of its connection file.
    :param manager: the kernel's manager when this client owns the kernel: used to watch
        the process, interrupt by signal and terminate.
    :param use_heartbeat: for kernels without a manager, ping the heartbeat channel to
        notice a dead kernel.

    Request methods send immediately and return awaitables resolving to the reply.
    """

    #: Default for execute(allow_stdin=None).
    allow_stdin = True
    #: Heartbeat: seconds between pings, and seconds without a pong that count as a miss.
    hb_interval = 0.5
    time_to_dead = 1.0
    #: Consecutive missed heartbeats after which a kernel is declared dead.
    hb_misses = 2

    def __init__(
        self,
        connection_info: Mapping[str, Any] | str | os.PathLike[str],
        manager: Any = None,
        use_heartbeat: bool = True,
    ) -> None:
        self.connection_info = connection_info_from(connection_info)
        self.manager = manager
        self.use_heartbeat = use_heartbeat
        self.session = Session(
            key=self.connection_info.get("key", b""),
            signature_scheme=self.connection_info.get("signature_scheme", "hmac-sha256"),
            username="kernel_mgmt",
        )
        #: The content of the last successful kernel_info_reply (set by wait_for_ready).
        self.kernel_info_dict: dict[str, Any] | None = None
        self._open_channels()
        self._handlers: list[tuple[Callable[..., Any], set[str], bool]] = []
        self._pending: dict[str, Any] = {}
        self._idle_waiters: dict[str, asyncio.Future[Any] | None] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._readers: list[int] = []
        #: Guards every use of the channel sockets: BlockingKernelClient sends from its
        #: caller's thread (one thread hop less per request) while this loop reads them.
        #: ZeroMQ sockets may change threads given a full memory barrier, which a lock is.
        self._io_lock = threading.Lock()
        #: ``waiter``: set by BlockingKernelClient in its caller's thread around a request
        #: method call; _send then sends from that thread and resolves the waiter on reply.
        self._tls = threading.local()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._iopub_seen: asyncio.Event | None = None
        self._died: KernelDied | None = None
        self._hb_task: asyncio.Task[Any] | None = None
        self._closed = False
        with contextlib.suppress(RuntimeError):  # no running loop: start on first use
            self._ensure_started()

    # -- lifecycle ----------------------------------------------------------------------------

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return loop
        if self._loop is not None and not self._loop.is_closed():
            raise RuntimeError("this KernelClient is bound to another event loop")
        if self._closed:
            raise RuntimeError("this KernelClient is closed")
        self._loop = loop
        self._iopub_seen = asyncio.Event()
        self._readers = []
        for channel in ("shell", "control", "stdin", "iopub"):
            fd = self.sockets[channel].FD
            loop.add_reader(fd, self._on_readable, channel)
            self._readers.append(fd)
            # ZMQ_FD is edge-triggered: messages queued before we watched it raise no edge.
            loop.call_soon(self._on_readable, channel)
        if self.manager is not None:
            self._tasks.append(loop.create_task(self._watch_process()))
        return loop

    @property
    def owned_kernel(self) -> bool:
        """True if this client 'owns' the kernel, i.e. has its manager."""
        return self.manager is not None

    @property
    def died(self) -> KernelDied | None:
        """The error describing the kernel's death, or None while it is (believed) alive."""
        return self._died

    def close(self) -> Done:
        """Close the sockets and stop the receive tasks; the client cannot be used after.

        Also awaitable (``await client.close()``), as in the seed's examples.
        """
        if self._closed:
            return Done()
        self._closed = True
        for task in [*self._tasks, *([self._hb_task] if self._hb_task else [])]:
            with contextlib.suppress(RuntimeError):  # its loop is already closed
                task.cancel()
        closed = KernelDied("the client was closed")
        for fut in [*self._pending.values(), *self._idle_waiters.values()]:
            if fut is not None:
                with contextlib.suppress(RuntimeError):
                    _fail(fut, closed)
        self._pending.clear()
        self._idle_waiters.clear()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            # Before the sockets close: a stale fd left in the selector would break it.
            for fd in self._readers:
                with contextlib.suppress(Exception):
                    loop.remove_reader(fd)
        self._readers = []
        with self._io_lock:
            for sock in self.sockets.values():
                with contextlib.suppress(Exception):
                    sock.close(linger=0)
        return Done()

    async def __aenter__(self) -> KernelClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- sending ------------------------------------------------------------------------------

    def _check_usable(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise RuntimeError("this KernelClient is closed")
        return self._ensure_started()

    # -- requests (messaging spec 5.3) --------------------------------------------------------

    def execute(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
        interrupt_timeout: float | None = None,
        idle_timeout: float | None = None,
        raise_on_no_idle: bool = False,
        _header: Mapping[str, Any] | None = None,
    ) -> ReplyFuture:
        """Execute *code*; resolves to the execute_reply.

        With *interrupt_timeout*, the kernel is interrupted if no reply came within that many
        seconds. With *idle_timeout*, also wait (up to that long) for the request's IOPub
        ``status: idle``, so all its output has been handled; *raise_on_no_idle* turns a
        missing idle into TimeoutError.
        """
        content = {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": user_expressions or {},
            "allow_stdin": self.allow_stdin if allow_stdin is None else allow_stdin,
            "stop_on_error": stop_on_error,
        }
        fut = self._send("shell", "execute_request", content, _header)
        if not (interrupt_timeout or idle_timeout):
            return fut
        outer = ReplyFuture(loop=self._loop)
        outer.jupyter_msg_id = fut.jupyter_msg_id
        outer.add_done_callback(_retrieve)
        task = asyncio.ensure_future(
            self._finish_execute(fut, interrupt_timeout, idle_timeout, raise_on_no_idle)
        )

        def copy(t: asyncio.Task[Any]) -> None:
            if outer.done():
                return
            if t.cancelled():
                outer.cancel()
            elif t.exception() is not None:
                outer.set_exception(t.exception())  # type: ignore[arg-type]
            else:
                outer.set_result(t.result())

        task.add_done_callback(copy)
        outer.add_done_callback(lambda o: o.cancelled() and task.cancel())
        return outer

    async def _finish_execute(
        self,
        fut: ReplyFuture,
        interrupt_timeout: float | None,
        idle_timeout: float | None,
        raise_on_no_idle: bool,
    ) -> Message:
        if interrupt_timeout:
            try:
                reply = await asyncio.wait_for(asyncio.shield(fut), interrupt_timeout)
            except TimeoutError:
                await self.interrupt()
                reply = await fut
        else:
            reply = await fut
        if idle_timeout:
            ok = await self.wait_for_idle(fut.jupyter_msg_id, idle_timeout)
            if not ok and raise_on_no_idle:
                raise TimeoutError(
                    f"no IOPub idle status for execute request {fut.jupyter_msg_id} "
                    f"within {idle_timeout} s"
                )
        return reply

    def complete(
        self, code: str, cursor_pos: int | None = None, _header: Mapping[str, Any] | None = None
    ) -> ReplyFuture:
        """Ask for completions of *code* at *cursor_pos* (default: the end)."""
        pos = len(code) if cursor_pos is None else cursor_pos
        return self._send("shell", "complete_request", {"code": code, "cursor_pos": pos}, _header)

    def inspect(
        self,
        code: str,
        cursor_pos: int | None = None,
        detail_level: int = 0,
        _header: Mapping[str, Any] | None = None,
    ) -> ReplyFuture:
        """Ask for information about the object at *cursor_pos* in *code*."""
        content = {
            "code": code,
            "cursor_pos": len(code) if cursor_pos is None else cursor_pos,
            "detail_level": detail_level,
        }
        return self._send("shell", "inspect_request", content, _header)

    def history(
        self,
        raw: bool = True,
        output: bool = False,
        hist_access_type: str = "range",
        _header: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> ReplyFuture:
        """Get history entries: 'range' (session, start, stop), 'tail' (n), 'search' (pattern)."""
        if hist_access_type == "range":
            kwargs.setdefault("session", 0)
            kwargs.setdefault("start", 0)
        content = {"raw": raw, "output": output, "hist_access_type": hist_access_type, **kwargs}
        return self._send("shell", "history_request", content, _header)

    def kernel_info(self, _header: Mapping[str, Any] | None = None) -> ReplyFuture:
        """Request the kernel's info (language, implementation, protocol version)."""
        return self._send("shell", "kernel_info_request", {}, _header)

    def comm_info(
        self, target_name: str | None = None, _header: Mapping[str, Any] | None = None
    ) -> ReplyFuture:
        """List the kernel's open comms (of *target_name* only, if given)."""
        content = {} if target_name is None else {"target_name": target_name}
        return self._send("shell", "comm_info_request", content, _header)

    def is_complete(self, code: str, _header: Mapping[str, Any] | None = None) -> ReplyFuture:
        """Ask whether *code* is complete and ready to execute."""
        return self._send("shell", "is_complete_request", {"code": code}, _header)

    def shutdown(
        self, restart: bool = False, _header: Mapping[str, Any] | None = None
    ) -> ReplyFuture:
        """Ask the kernel to shut down (on the control channel, messaging spec 5.x).

        Without *restart* the exit is wanted: the owned kernel's manager gets
        ``shutdown_requested`` set (before sending), so a restarter does not relaunch it.
        With *restart* the kernel also exits and a restarter brings it back.
        """
        if not restart and self.manager is not None:
            with contextlib.suppress(AttributeError):  # a manager with __slots__ / read-only
                self.manager.shutdown_requested = True
        return self._send("control", "shutdown_request", {"restart": restart}, _header)

    async def interrupt(
        self, _header: Mapping[str, Any] | None = None, *, timeout: float | None = 10.0
    ) -> Message | None:
        """Interrupt the kernel: ``interrupt_request`` on control if its interrupt_mode is
        'message' (or we have no manager to signal it), else the manager's interrupt().

        Returns the interrupt_reply (TimeoutError if none within *timeout* seconds), or None
        when the kernel was signalled.
        """
        mode = getattr(self.manager, "interrupt_mode", None) or self.connection_info.get(
            "interrupt_mode", "signal"
        )
        if self.manager is None or mode == "message":
            fut = self._send("control", "interrupt_request", {}, _header)
            try:
                return await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                raise TimeoutError(f"no interrupt_reply within {timeout} s") from None
        self._check_usable()
        await self.manager.interrupt()
        return None

    def input(self, string: str, parent: Mapping[str, Any] | None = None) -> Done:
        """Answer the kernel's input_request with *string* (an input_reply on stdin)."""
        fut = self._send(
            "stdin", "input_reply", {"value": string}, expect_reply=False, parent=parent
        )
        return Done(fut.result() if fut.done() and not fut.exception() else None)
