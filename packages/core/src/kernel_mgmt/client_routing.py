"""Request routing in the client: each reply to the awaitable of its request.

:class:`Routing` (a base of :class:`~kernel_mgmt.client_base.KernelClient`) sends a request
and files its :class:`ReplyFuture` under the request's ``msg_id``; every message read is matched
by ``parent_header.msg_id`` to that future (shell, control), to the waiter for an execute's
IOPub ``status: idle``, and handed to the handlers of its channel (:meth:`Routing.add_handler`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any

from kernel_mgmt.client_errors import KernelDied
from kernel_mgmt.protocol import Message, Session

__all__ = [
    "HANDLER_CHANNELS",
    "MAX_IDLE_WAITERS",
    "PENDING_PURGE",
    "Done",
    "ReplyFuture",
    "Routing",
]

log = logging.getLogger("kernel_mgmt.client")

#: Channels whose messages handlers can receive (the heartbeat carries no messages).
HANDLER_CHANNELS = frozenset({"shell", "iopub", "stdin", "control"})
#: Idle waiters kept for execute requests nobody has awaited the idle of yet; beyond this
#: the oldest are dropped (a kernel that never sends ``status: idle`` must not leak memory).
MAX_IDLE_WAITERS = 1000
#: Above this many outstanding requests, those whose awaitable was cancelled are purged.
PENDING_PURGE = 4096

#: Placeholder in ``_idle_waiters``: an execute whose idle nobody awaits yet (no future made).
_NOT_IDLE = None


class ReplyFuture(asyncio.Future):  # type: ignore[type-arg]
    """An awaitable reply; ``jupyter_msg_id`` is the id of the request that was sent."""

    jupyter_msg_id: str = ""


class Done:
    """An already-finished awaitable, for methods the seed made awaitable that need no wait."""

    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield  # pragma: no cover - makes this a generator

    def result(self) -> Any:
        return self.value


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen: requests nobody awaits must not log at GC."""
    if not fut.cancelled():
        fut.exception()


def _fail(fut: Any, err: BaseException) -> None:
    """Fail a pending reply; marked as retrieved, so one nobody awaits logs nothing at GC."""
    if not fut.done():
        fut.set_exception(err)
        fut.exception()


def _accepts_two_args(func: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= 2


class Routing:
    """The tables of pending replies, idle waiters and handlers, and the code that fills them."""

    session: Session
    manager: Any
    use_heartbeat: bool
    kernel_info_dict: dict[str, Any] | None
    _handlers: list[tuple[Callable[..., Any], set[str], bool]]
    _pending: dict[str, Any]
    _idle_waiters: dict[str, asyncio.Future[Any] | None]
    _tls: threading.local
    _loop: asyncio.AbstractEventLoop | None
    _iopub_seen: asyncio.Event | None
    _died: KernelDied | None
    _hb_task: asyncio.Task[Any] | None
    _closed: bool
    # From the other bases of KernelClient.
    _check_usable: Callable[[], asyncio.AbstractEventLoop]
    _send_frames: Callable[..., None]
    _heartbeat: Callable[[], Any]

    def _send(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        _header: Mapping[str, Any] | None = None,
        expect_reply: bool = True,
        parent: Mapping[str, Any] | None = None,
    ) -> ReplyFuture:
        waiter = getattr(self._tls, "waiter", None)
        if waiter is not None:  # a BlockingKernelClient request, in its caller's thread
            self._tls.waiter = None
            if self._closed:
                raise RuntimeError("this KernelClient is closed")
            fut = waiter
        else:
            fut = ReplyFuture(loop=self._check_usable())
        msg = self.session.msg(msg_type, content, parent=parent)
        if _header:
            msg["header"].update(_header)
            msg["msg_id"] = msg["header"]["msg_id"]
        msg_id = msg["header"]["msg_id"]
        fut.jupyter_msg_id = msg_id
        if self._died is not None:
            _fail(fut, self._died)
            return fut  # type: ignore[no-any-return]
        # The tables below are shared with the loop thread: only single dict operations
        # (atomic under the GIL) and C-level copies are used on them.
        if expect_reply:
            pending = self._pending
            if len(pending) >= PENDING_PURGE:  # awaitables cancelled before their reply
                for k, f in list(pending.items()):
                    if f.done():
                        pending.pop(k, None)
            pending[msg_id] = fut
        if msg_type == "execute_request":
            idle = self._idle_waiters
            idle[msg_id] = _NOT_IDLE
            if len(idle) > MAX_IDLE_WAITERS:
                oldest = next(iter(list(idle)))
                dropped = idle.pop(oldest, None)
                if dropped is not None:
                    assert self._loop is not None
                    self._loop.call_soon_threadsafe(dropped.cancel)
        self._send_frames(channel, self.session.serialize(msg), threadsafe=waiter is not None)
        if waiter is not None and self._died is not None:
            # Died while we registered: _mark_dead may have swept the table just before.
            _fail(waiter, self._died)
        if not expect_reply:
            fut.set_result(msg)
        return fut  # type: ignore[no-any-return]

    def _dispatch(self, channel: str, msg: Message) -> None:
        parent_id = msg.parent_header.get("msg_id")
        if self._hb_task is None and self.manager is None and self.use_heartbeat:
            # Start pinging once the kernel has shown it is up, so a slow start is not
            # mistaken for a dead kernel.
            assert self._loop is not None
            self._hb_task = self._loop.create_task(self._heartbeat())
        if channel == "iopub":
            assert self._iopub_seen is not None
            self._iopub_seen.set()
            if (
                parent_id in self._idle_waiters
                and msg.msg_type == "status"
                and msg.content.get("execution_state") == "idle"
            ):
                fut = self._idle_waiters.pop(parent_id)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        elif msg.msg_type == "kernel_info_reply" and msg.content.get("status", "ok") == "ok":
            # Some kernels omit status; absence means ok.
            self.kernel_info_dict = msg.content
        for handler, channels, two in self._handlers[:] if self._handlers else ():
            if channel in channels:
                try:
                    handler(msg, channel) if two else handler(msg)
                except Exception:
                    log.exception("message handler %r failed", handler)
        if channel in ("shell", "control") and parent_id is not None:
            fut = self._pending.pop(parent_id, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    def add_handler(self, handler: Callable[..., Any], channels: str | Iterable[str]) -> Any:
        """Call *handler(msg, channel)* (or *handler(msg)*) for every message on *channels*.

        *channels* is a name or a set of names among 'shell', 'iopub', 'stdin', 'control'.
        Handlers run in the event loop: they must not block.
        """
        chans = {channels} if isinstance(channels, str) else set(channels)
        invalid = chans - HANDLER_CHANNELS
        if invalid:
            raise ValueError(
                f"invalid channel names {sorted(invalid)}; use {sorted(HANDLER_CHANNELS)}"
            )
        for func, existing, _two in self._handlers:
            if func == handler:
                existing.update(chans)
                return handler
        self._handlers.append((handler, chans, _accepts_two_args(handler)))
        return handler

    def remove_handler(
        self, handler: Callable[..., Any], channels: str | Iterable[str] | None = None
    ) -> None:
        """Stop calling *handler* (for *channels* only, or for all when None)."""
        for i, (func, existing, _two) in enumerate(self._handlers):
            if func == handler:
                if channels is None:
                    del self._handlers[i]
                else:
                    existing -= {channels} if isinstance(channels, str) else set(channels)
                    if not existing:
                        del self._handlers[i]
                return

    async def wait_for_idle(self, msg_id: str, timeout: float | None) -> bool:
        """Wait for the IOPub ``status: idle`` of execute request *msg_id*; False on timeout."""
        if msg_id not in self._idle_waiters:
            return True  # already seen (or not an execute request of ours)
        waiter = self._idle_waiters[msg_id]
        if waiter is None:
            assert self._loop is not None
            waiter = self._idle_waiters[msg_id] = self._loop.create_future()
            waiter.add_done_callback(_retrieve)
        elif waiter.cancelled():
            return False  # dropped: too many idles outstanding
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return False
        finally:
            if waiter.done():
                self._idle_waiters.pop(msg_id, None)
        return True
