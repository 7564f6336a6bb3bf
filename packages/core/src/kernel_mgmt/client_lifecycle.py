"""A client's view of the kernel's life: ready, alive, dead, shut down.

:class:`Lifecycle` (a base of :class:`~kernel_mgmt.client_base.KernelClient`) waits for a
kernel to be ready (``kernel_info_reply`` plus a first IOPub message), notices its death (the
process of a kernel it owns, else missed heartbeats) and fails every pending request with
:class:`~kernel_mgmt.client_errors.KernelDied`, and shuts it down (``shutdown_request``, then
SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import zmq

from kernel_mgmt.client_errors import KernelDied, describe_exit, kernel_label
from kernel_mgmt.client_routing import _fail
from kernel_mgmt.connection import channel_url
from kernel_mgmt.curve import IGNORED_KEYS, TransportEncryptionError, mechanism_mismatch
from kernel_mgmt.protocol import Message

__all__ = ["IOPUB_RETRY_S", "Lifecycle"]

log = logging.getLogger("kernel_mgmt.client")

#: How long wait_for_ready waits for the first IOPub message after a kernel_info_reply
#: before asking again (kernels without ``iopub_welcome`` only publish on requests).
IOPUB_RETRY_S = 0.25


class Lifecycle:
    """Readiness, death detection and shutdown, for a kernel client."""

    connection_info: dict[str, Any]
    manager: Any
    hb_interval: float
    time_to_dead: float
    hb_misses: int
    _pending: dict[str, Any]
    _idle_waiters: dict[str, asyncio.Future[Any] | None]
    _iopub_seen: asyncio.Event | None
    _died: KernelDied | None
    _closed: bool
    _check_usable: Callable[[], asyncio.AbstractEventLoop]
    _make_socket: Callable[[int], Any]
    _curve: tuple[bytes, bytes | None] | None
    sockets: dict[str, Any]
    #: True while a wait_for_ready watches the shell handshake (concurrent ones just wait).
    _watching_handshake = False
    kernel_info: Callable[..., Any]
    shutdown: Callable[..., Any]

    async def wait_for_ready(self, timeout: float | None = 60.0) -> Message:
        """Wait until the kernel answers kernel_info and our IOPub subscription works.

        Ready means a kernel_info_reply plus a first IOPub message (``iopub_welcome`` from
        kernels that send it, else the status messages around kernel_info). Returns the
        kernel_info_reply. Raises :class:`KernelDied` at once if the kernel exits, and
        TimeoutError after *timeout* seconds.
        """
        self._check_usable()
        assert self._iopub_seen is not None
        iopub_seen = self._iopub_seen

        async def ready() -> Message:
            while True:
                reply = await self.kernel_info()
                if iopub_seen.is_set():
                    return reply
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(iopub_seen.wait(), IOPUB_RETRY_S)
                    return reply

        try:
            if self._curve is None:
                return await asyncio.wait_for(ready(), timeout)
            return await asyncio.wait_for(self._ready_unless_keys_ignored(ready()), timeout)
        except TimeoutError:
            if self._died is not None:
                raise self._died from None
            hint = "is it a Jupyter kernel?"
            if self._curve is not None:
                # A CURVE client gets nothing from a kernel that ignored its keys.
                hint = (
                    "the connection uses CurveZMQ keys: a kernel that ignores them (one whose "
                    "kernelspec declares metadata.supported_encryption without support) cannot "
                    "be reached; set transport_encryption to 'disabled' for it"
                )
            raise TimeoutError(
                f"kernel did not become ready within {timeout} s "
                f"(no kernel_info_reply or no IOPub message); {hint}"
            ) from None

    async def _ready_unless_keys_ignored(self, ready: Awaitable[Message]) -> Message:
        """*ready*, failing fast with TransportEncryptionError if the kernel turns out to
        speak without CurveZMQ (it ignored the keys in its connection file)."""
        if self._watching_handshake:  # a socket has one monitor at most
            return await ready
        self._watching_handshake = True
        waiting = asyncio.ensure_future(ready)
        watch = asyncio.ensure_future(mechanism_mismatch(self.sockets["shell"]))
        try:
            await asyncio.wait({waiting, watch}, return_when=asyncio.FIRST_COMPLETED)
            if waiting.done() or not watch.done() or watch.exception() is not None:
                return await waiting
            raise TransportEncryptionError(f"{kernel_label(self.manager)}: {IGNORED_KEYS}")
        finally:
            for task in (waiting, watch):
                task.cancel()
            await asyncio.gather(waiting, watch, return_exceptions=True)
            self._watching_handshake = False

    def _death_error(self, why: str = "") -> KernelDied:
        mgr = self.manager
        rc = getattr(mgr, "returncode", None) if mgr is not None else None
        tail = ""
        if mgr is not None and hasattr(mgr, "stderr_tail"):
            with contextlib.suppress(Exception):
                tail = mgr.stderr_tail() or ""
        msg = f"{kernel_label(mgr)} died"
        how = [h for h in (describe_exit(rc), why) if h]
        if how:
            msg += ": " + "; ".join(how)
        if tail.strip():
            msg += ". Last lines of its stderr:\n" + tail.rstrip()
        return KernelDied(msg, returncode=rc, stderr=tail)

    def _mark_dead(self, err: KernelDied) -> None:
        if self._died is not None:
            return
        self._died = err
        for fut in [*self._pending.values(), *self._idle_waiters.values()]:
            if fut is not None:
                _fail(fut, err)
        self._pending.clear()
        self._idle_waiters.clear()

    async def _watch_process(self) -> None:
        mgr = self.manager
        try:
            while await mgr.wait():
                pass  # wait(None) only returns early on a spurious wake-up
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("manager.wait() failed; polling is_alive()", exc_info=True)
            while await mgr.is_alive():
                await asyncio.sleep(0.05)
        # Replies the kernel sent just before exiting may still sit in our sockets: let the
        # receive tasks drain them before failing what is left.
        await asyncio.sleep(0.02)
        self._mark_dead(self._death_error())

    async def _heartbeat(self) -> None:
        """Ping the heartbeat channel; `hb_misses` pongs missed in a row mean a dead kernel."""
        url = channel_url(self.connection_info, "hb")
        misses = 0
        sock = self._make_socket(zmq.REQ)
        sock.connect(url)
        try:
            while True:
                await sock.send(b"ping")
                try:
                    await asyncio.wait_for(sock.recv(), self.time_to_dead)
                except TimeoutError:
                    misses += 1
                    # A REQ socket that lost its reply is stuck in the "awaiting reply"
                    # state: start over with a fresh one.
                    sock.close(linger=0)
                    if misses >= self.hb_misses:
                        self._mark_dead(self._death_error("it stopped answering its heartbeat"))
                        return
                    sock = self._make_socket(zmq.REQ)
                    sock.connect(url)
                    continue
                misses = 0
                await asyncio.sleep(self.hb_interval)
        finally:
            sock.close(linger=0)

    async def is_alive(self) -> bool:
        """True while the kernel runs (its process for owned kernels, else its heartbeat)."""
        if self.manager is not None:
            return bool(await self.manager.is_alive())
        return self._died is None

    async def shutdown_or_terminate(self, timeout: float = 5.0) -> None:
        """Ask the kernel to shut down; terminate it, then kill it, if it does not go.

        Sends shutdown_request on control and waits up to *timeout* for the reply and the
        same again for the process to exit; then SIGTERM (``manager.terminate()``) and up to
        *timeout* more; then SIGKILL, and its files are cleaned up. Safe on a kernel that
        already died.
        """
        if self.manager is None:
            if self._died is None and not self._closed:
                with contextlib.suppress(TimeoutError, KernelDied):
                    await asyncio.wait_for(self.shutdown(), timeout)
            return
        mgr = self.manager
        alive = bool(await mgr.is_alive())
        if alive and self._died is None and not self._closed:
            with contextlib.suppress(TimeoutError, KernelDied):
                await asyncio.wait_for(self.shutdown(), timeout)
            alive = bool(await mgr.wait(timeout))
        if alive:
            log.debug("kernel still alive %s s after shutdown_request; terminating", timeout)
            terminate = getattr(mgr, "terminate", None)
            with contextlib.suppress(ProcessLookupError):
                if terminate is not None:
                    await terminate()
                else:  # KernelManagerABC has no terminate(): signal() is the portable way
                    await mgr.signal(signal.SIGTERM)
            if await mgr.wait(timeout):
                log.debug("kernel ignored SIGTERM for %s s; killing", timeout)
        # Also reaps children the kernel left in its process group; a no-op otherwise.
        await mgr.kill()
        await mgr.cleanup()
