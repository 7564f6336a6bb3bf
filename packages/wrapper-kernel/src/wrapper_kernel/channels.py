"""The kernel's five sockets: binding them, and sending and receiving frames fast.

``send_frames``/``recv_frames`` bypass pyzmq's Python-level multipart overhead and keep a
message whole across a SIGINT (see :func:`defer_interrupt`); :class:`IOPubSocket` is the
shared, locked XPUB socket that answers subscriptions with ``iopub_welcome``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import zmq

from kernel_mgmt.connection import channel_url, write_connection_file
from kernel_mgmt.curve import CurveKeyError, apply_server_options, curve_keys
from kernel_mgmt.protocol import Session

__all__ = [
    "FastSocket",
    "IOPubSocket",
    "KernelStartupError",
    "bind_channels",
    "defer_interrupt",
    "recv_frames",
    "send_frames",
]


class KernelStartupError(RuntimeError):
    """The kernel could not start listening (bad connection file, port in use)."""


# pyzmq's Socket.send_multipart spends ~15 µs per message on enum arithmetic and per-frame
# checks (profiled: half an echo round trip). The Cython base methods do the same work in C.
try:
    _send = zmq.backend.Socket.send
    _recv = zmq.backend.Socket.recv
    _get = zmq.backend.Socket.get
except AttributeError:  # pragma: no cover - a pyzmq without the Cython backend class
    _send = zmq.Socket.send
    _recv = zmq.Socket.recv
    _get = zmq.Socket.get
_SNDMORE = int(zmq.SNDMORE)
_RCVMORE = int(zmq.RCVMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_NOBLOCK = int(zmq.NOBLOCK)


# A KeyboardInterrupt raised between two frames of a multipart message would leave half of it
# in the socket, and the next message (an `error`, the `idle` every client waits for) would be
# glued onto it and rejected. So the SIGINT handler does not raise while the main thread is
# inside send_frames/recv_frames (it sees the interrupted frame): it sets this flag, and the
# function raises once the message is whole.
_interrupt_deferred = False


def _raise_deferred() -> None:
    global _interrupt_deferred
    if threading.get_ident() == threading.main_thread().ident:
        _interrupt_deferred = False
        raise KeyboardInterrupt


def send_frames(sock: zmq.Socket, frames: list[Any], flags: int = 0) -> None:
    """``sock.send_multipart(frames)``, without pyzmq's Python-level overhead."""
    last = len(frames) - 1
    more = _SNDMORE | int(flags)
    try:
        for i, frame in enumerate(frames):
            _send(sock, frame, more if i < last else int(flags))
    finally:
        if _interrupt_deferred:
            _raise_deferred()


def recv_frames(sock: zmq.Socket, flags: int = 0) -> list[bytes]:
    """``sock.recv_multipart(flags)`` (raises zmq.Again with NOBLOCK when empty)."""
    try:
        frames = [_recv(sock, flags)]
        while _get(sock, _RCVMORE):
            frames.append(_recv(sock, 0))
    finally:
        if _interrupt_deferred:
            _raise_deferred()
    return frames


_ATOMIC_CODE = (send_frames.__code__, recv_frames.__code__)


def defer_interrupt(frame: Any) -> bool:
    """Called by the SIGINT handler: True if ``frame`` is inside :func:`send_frames` or
    :func:`recv_frames`; the ``KeyboardInterrupt`` is then raised once the message is whole."""
    global _interrupt_deferred
    if frame is not None and frame.f_code in _ATOMIC_CODE:
        _interrupt_deferred = True
        return True
    return False


class FastSocket:
    """A ROUTER socket's sending side for ``Session.send`` (fast ``send_multipart``).

    Everything else is delegated to the zmq socket, so author code can use it as one.
    """

    def __init__(self, socket: zmq.Socket) -> None:
        self.socket = socket

    def send_multipart(self, frames: list[Any], flags: int = 0, **kwargs: Any) -> None:
        if kwargs:
            self.socket.send_multipart(frames, flags, **kwargs)
        else:
            send_frames(self.socket, frames, flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.socket, name)


class IOPubSocket:
    """The IOPub XPUB socket, shared by the main and control threads behind one lock.

    Looks like a zmq socket to ``Session.send`` and to author code (``send_multipart``).
    XPUB hands us each subscription as a message ``b"\\x01" + topic``; we answer every one
    with ``iopub_welcome`` (JEP 65) so a client knows its subscription is live.

    The control thread waits on the socket's fd for subscriptions. That fd is edge-triggered:
    a send may process the pending "subscription arrived" command and so consume the edge.
    So subscriptions are also checked after each request (:meth:`check_subscriptions`) and,
    during a long stream of output, at most every ``CHECK_INTERVAL`` seconds of sending.
    """

    CHECK_INTERVAL = 0.01

    def __init__(self, socket: zmq.Socket, session: Session) -> None:
        self.socket = socket
        self.session = session
        self.lock = threading.Lock()
        self._topics: dict[str, bytes] = {}
        self._prefix = f"kernel.{session.session_id}."
        self._checked = 0.0
        # Read here, on the binding thread: zmq sockets are not thread-safe, and once the
        # control thread runs, every use of this socket must hold the lock.
        self.fd: int = socket.get(zmq.FD)

    def topic(self, msg_type: str) -> bytes:
        """The topic frame for ``msg_type`` (``kernel.<session>.<msg_type>``, as ipykernel)."""
        topic = self._topics.get(msg_type)
        if topic is None:
            topic = self._topics[msg_type] = (self._prefix + msg_type).encode()
        return topic

    def send_multipart(self, frames: list[Any], flags: int = 0, **kwargs: Any) -> None:
        sock = self.socket
        with self.lock:
            if kwargs:
                sock.send_multipart(frames, flags, **kwargs)
            else:
                send_frames(sock, frames, flags)
            now = time.monotonic()
            if now - self._checked > self.CHECK_INTERVAL:
                self._checked = now
                if _get(sock, _EVENTS) & _POLLIN:
                    self._welcome_locked()

    def send(self, data: Any, flags: int = 0, **kwargs: Any) -> None:
        with self.lock:
            self.socket.send(data, flags, **kwargs)

    def check_subscriptions(self) -> None:
        """Answer pending subscriptions (after a request, or when the socket's fd signals)."""
        with self.lock:
            self._checked = time.monotonic()
            if _get(self.socket, _EVENTS) & _POLLIN:
                self._welcome_locked()

    def _welcome_locked(self) -> None:
        sock = self.socket
        while True:
            try:
                frame = _recv(sock, _NOBLOCK)
            except zmq.Again:
                return
            if frame[:1] != b"\x01":  # unsubscription
                continue
            try:
                topic = frame[1:].decode("utf-8")
            except UnicodeDecodeError:
                continue
            msg = self.session.msg("iopub_welcome", {"subscription": topic})
            send_frames(sock, self.session.serialize(msg, [frame[1:]] if topic else []))

    def close(self, linger: int = 1000) -> None:
        with self.lock:
            self.socket.close(linger=linger)


def bind_channels(
    ctx: zmq.Context, info: dict[str, Any], session: Session, connection_file: str | None
) -> tuple[zmq.Socket, zmq.Socket, zmq.Socket, IOPubSocket, zmq.Socket]:
    """Bind shell, control, stdin, iopub and hb as ``info`` says; return them in that order.

    A tcp port of 0 (or none) is picked here and written to ``info`` and, if given, to
    ``connection_file``. Raises :class:`KernelStartupError` naming the channel that failed;
    the caller destroys ``ctx`` to release what was opened.
    """
    shell = ctx.socket(zmq.ROUTER)
    control = ctx.socket(zmq.ROUTER)
    stdin = ctx.socket(zmq.ROUTER)
    iopub = ctx.socket(zmq.XPUB)
    hb = ctx.socket(zmq.ROUTER)
    # Every subscription (not only the first per topic) reaches us, for iopub_welcome.
    iopub.setsockopt(zmq.XPUB_VERBOSE, 1)
    for sock in (shell, control, stdin):
        # A client reconnecting with the same identity takes over its old route.
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    for sock in (shell, control, iopub):
        sock.setsockopt(zmq.LINGER, 1000)  # let the last replies out at shutdown
    stdin.setsockopt(zmq.LINGER, 0)
    stdin.setsockopt(zmq.ROUTER_MANDATORY, 1)
    hb.setsockopt(zmq.LINGER, 0)
    changed = False
    pairs = (
        (shell, "shell"),
        (iopub, "iopub"),
        (stdin, "stdin"),
        (control, "control"),
        (hb, "hb"),
    )
    ip = info.get("ip") or "127.0.0.1"
    transport = info.get("transport") or "tcp"
    where = f" in {connection_file}" if connection_file else ""
    try:
        keys = curve_keys(info, where)
        if keys is not None:
            # With keys we are the CURVE server on every socket (as ipykernel is); a client
            # without our public key cannot complete the handshake.
            for sock, _ in pairs:
                apply_server_options(sock, keys)
    except CurveKeyError as e:
        raise KernelStartupError(str(e)) from None
    if ":" in ip:
        for sock, _ in pairs:
            sock.setsockopt(zmq.IPV6, 1)
    for sock, channel in pairs:
        port = info.get(f"{channel}_port")
        try:
            if transport == "tcp" and not port:
                # Port 0: we pick and record it (ipykernel does the same), no race.
                host = f"[{ip}]" if ":" in ip else ip
                info[f"{channel}_port"] = sock.bind_to_random_port(f"tcp://{host}")
                changed = True
            else:
                sock.bind(channel_url(info, channel))
        except (zmq.ZMQError, KeyError, ValueError) as e:
            raise KernelStartupError(
                f"cannot listen on the {channel} channel ({transport} {ip} port {port}): {e}. "
                "Another process may hold the port; start the kernel again with new ports."
            ) from None
    if changed and connection_file:
        write_connection_file(connection_file, **info)
    return shell, control, stdin, IOPubSocket(iopub, session), hb
