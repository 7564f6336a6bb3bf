"""The client's socket layer: one ZeroMQ socket per channel, read from event-loop callbacks.

:class:`Channels` (a base of :class:`~kernel_mgmt.client_base.KernelClient`) connects the
shell, control, stdin and iopub sockets, reads them from reader callbacks with NOBLOCK (no task
or future per message) and sends without blocking, queueing behind the high-water mark. Each
message read is handed to ``_dispatch`` (:mod:`kernel_mgmt.client_routing`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import zmq
import zmq.asyncio

from kernel_mgmt.client_errors import ConnectionInfoError
from kernel_mgmt.connection import PORT_NAMES, channel_url, read_connection_file
from kernel_mgmt.curve import CurveKeyError, apply_client_options, curve_keys
from kernel_mgmt.protocol import Message, ProtocolError, Session

__all__ = [
    "MAX_BATCH",
    "RECONNECT_IVL_MS",
    "REQUIRED_CONNECTION_KEYS",
    "Channels",
    "connection_info_from",
]

log = logging.getLogger("kernel_mgmt.client")

#: libzmq retries a refused connect after this many ms (default 100). Clients usually
#: connect before the kernel has bound its ports; 100 ms would quantise every start.
#: No exponential back-off (RECONNECT_IVL_MAX stays 0): with back-off the last retry could
#: come long after a slow kernel finally binds. A refused loopback connect costs microseconds.
RECONNECT_IVL_MS = 10
#: Messages read per reader callback before yielding to the rest of the event loop.
MAX_BATCH = 64

_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE_NOBLOCK = int(zmq.SNDMORE) | _NOBLOCK
_RCVMORE = int(zmq.RCVMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)
# pyzmq's compiled socket methods, called with int flags: its Python-level send/recv_multipart
# wrappers cost as much again per message in enum arithmetic and argument checks.
_zsend = zmq.backend.Socket.send
_zrecv = zmq.backend.Socket.recv
_zget = zmq.backend.Socket.get


def _send_multipart(sock: zmq.Socket, frames: list[bytes]) -> None:
    """Send *frames* (bytes) as one message without blocking; zmq.Again if the queue is full.

    libzmq queues multipart messages atomically: if the first frame goes, all do.
    """
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        _zsend(sock, frame, _SNDMORE_NOBLOCK if i < last else _NOBLOCK)


def _recv_multipart(sock: zmq.Socket) -> list[bytes]:
    """Receive one whole message without blocking; zmq.Again if none is waiting."""
    parts = [_zrecv(sock, _NOBLOCK)]
    while _zget(sock, _RCVMORE):
        parts.append(_zrecv(sock, _NOBLOCK))
    return parts


#: Keys a client needs to reach all five channels (messaging spec, "Connection files").
REQUIRED_CONNECTION_KEYS = ("ip", *PORT_NAMES)


def connection_info_from(
    connection_info: Mapping[str, Any] | str | os.PathLike[str],
) -> dict[str, Any]:
    """A copy of *connection_info*, or the contents of a connection file given by its path.

    Raises :class:`~kernel_mgmt.connection.ConnectionFileError` for a file that cannot be
    read and :class:`ConnectionInfoError` (both ValueErrors) for a mapping missing keys.
    """
    if isinstance(connection_info, (str, os.PathLike)):
        return read_connection_file(os.fsdecode(connection_info))
    if not isinstance(connection_info, Mapping):
        raise TypeError(
            "connection_info must be a mapping (the kernel's connection info) or the path "
            f"of a connection file, not {type(connection_info).__name__}"
        )
    info = dict(connection_info)
    missing = [k for k in REQUIRED_CONNECTION_KEYS if k not in info]
    if missing:
        raise ConnectionInfoError(
            f"connection info lacks {', '.join(missing)}: give the kernel's whole connection "
            "info (as returned by the launch) or the path of its connection file"
        )
    return info


class Channels:
    """The sockets of a client and the reader callbacks that drain them."""

    connection_info: dict[str, Any]
    session: Session
    _closed: bool
    _loop: asyncio.AbstractEventLoop | None
    _io_lock: threading.Lock
    _curve: tuple[bytes, bytes | None] | None
    #: Where each message read goes (:class:`~kernel_mgmt.client_routing.Routing`).
    _dispatch: Callable[[str, Message], None]

    def _open_channels(self) -> None:
        """Connect the shell, control, stdin (DEALER) and iopub (SUB) sockets."""
        try:
            #: The kernel's CurveZMQ keys when its connection info has them: every socket,
            #: the heartbeat's too, is then a CURVE client of the kernel.
            self._curve = curve_keys(self.connection_info)
        except CurveKeyError as e:
            raise ConnectionInfoError(str(e)) from None
        self.context = zmq.asyncio.Context.instance()
        self.sockets: dict[str, zmq.asyncio.Socket] = {}
        # Synchronous views of the same sockets: the hot path sends and reads with NOBLOCK
        # from the event loop's own reader callbacks, skipping zmq.asyncio's per-call futures.
        self._sync: dict[str, zmq.Socket] = {}
        self._outbox: dict[str, list[list[bytes]]] = {}
        identity = self.session.session_id.encode("ascii")
        for channel, kind in (
            ("shell", zmq.DEALER),
            ("control", zmq.DEALER),
            ("stdin", zmq.DEALER),
            ("iopub", zmq.SUB),
        ):
            sock = self._make_socket(kind)
            if channel in ("shell", "stdin"):
                # The kernel routes input_request to the stdin socket with the identity the
                # execute_request came from on shell (messaging spec, "Messages on the stdin
                # ROUTER/DEALER channel"): both must share one identity.
                sock.setsockopt(zmq.IDENTITY, identity)
            if kind == zmq.SUB:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(channel_url(self.connection_info, channel))
            self.sockets[channel] = sock
            self._sync[channel] = zmq.Socket.shadow(sock.underlying)

    def _make_socket(self, kind: int) -> zmq.asyncio.Socket:
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        if self._curve is not None:
            apply_client_options(sock, self._curve)
        return sock

    def _on_readable(self, channel: str) -> None:
        """Reader callback: read *channel* with NOBLOCK until it is empty, dispatching each.

        ZMQ_FD is edge-triggered, so a batch must end on ``Again`` (or be resumed by
        ``call_soon``) or later messages would raise no new wake-up.
        """
        if self._closed:
            return
        sock = self._sync[channel]
        lock = self._io_lock
        if self._outbox.get(channel):
            with lock:
                self._flush(channel)
        deserialize = self.session.deserialize
        dispatch = self._dispatch
        for _ in range(MAX_BATCH):
            try:
                with lock:
                    if self._closed:
                        return
                    frames = _recv_multipart(sock)
            except zmq.Again:
                return
            except zmq.ZMQError as e:
                if self._closed or sock.closed:
                    return
                # Unexpected (the edge may be consumed): look again shortly, never give up.
                log.warning("receive error on %s channel: %s", channel, e)
                assert self._loop is not None
                self._loop.call_later(0.01, self._on_readable, channel)
                return
            try:
                msg = deserialize(frames)
            except ProtocolError as e:
                # Never let a bad message stop the reading: a wrong key or a stray peer
                # must not take the client down with it.
                log.warning("dropped a message on the %s channel: %s", channel, e)
                continue
            try:
                dispatch(channel, msg)
            except Exception:
                log.exception("error dispatching %s message %s", channel, msg.msg_type)
            if self._closed:
                return
        # More may be waiting: come back after the rest of the loop had its turn.
        assert self._loop is not None
        self._loop.call_soon(self._on_readable, channel)

    def _send_frames(self, channel: str, frames: list[bytes], threadsafe: bool = False) -> None:
        """Queue *frames* on *channel* without blocking (from the loop, or any thread if
        *threadsafe*); raises RuntimeError if the client was closed."""
        sock = self._sync[channel]
        with self._io_lock:
            if self._closed:
                raise RuntimeError("this KernelClient is closed")
            if self._outbox.get(channel):
                self._outbox[channel].append(frames)  # keep the order
                self._flush(channel)
            else:
                try:
                    _send_multipart(sock, frames)
                except zmq.Again:
                    # High-water mark reached (a kernel not reading): send when writable.
                    self._outbox.setdefault(channel, []).append(frames)
            # Sending can consume the FD's edge while a reply became readable: look now.
            readable = _zget(sock, _EVENTS) & _POLLIN
        if readable and self._loop is not None:
            if threadsafe:
                self._loop.call_soon_threadsafe(self._on_readable, channel)
            else:
                self._loop.call_soon(self._on_readable, channel)

    def _flush(self, channel: str) -> None:
        """Send what waited for the high-water mark to clear (hold ``_io_lock``)."""
        sock = self._sync[channel]
        box = self._outbox[channel]
        while box:
            try:
                _send_multipart(sock, box[0])
            except zmq.Again:
                if self._loop is not None:  # ZMQ_FD signals POLLOUT changes too; retry soon
                    self._loop.call_soon_threadsafe(
                        self._loop.call_later, 0.005, self._on_readable, channel
                    )
                return
            box.pop(0)
