"""The local bridge: five ZeroMQ sockets on 127.0.0.1 relaying to a gateway kernel's websocket.

Clients (ours, jupyter_client's, anything reading a connection file) talk to the bridge as
to a local kernel. Each message from a client is checked against the bridge's own key and
forwarded to ``/api/kernels/<id>/channels``; each message from the gateway is signed with
the bridge's key and sent to the client that asked (ROUTER identity of the request, kept
by ``msg_id``), or published on IOPub. Frames pass through byte for byte with the v1
subprotocol, so header, parent_header, metadata, content and buffers stay intact.

Everything runs on the bridge's own event loop in a daemon thread, so the bridge does not
depend on the loop (or the thread) that launched it: a blocking client's private loop, a
notebook's loop and ``asyncio.run`` all work. The heartbeat is answered only while the
remote kernel is alive.

With Curve keys (``curve_publickey``/``curve_secretkey`` of its connection file, see
:mod:`kernel_mgmt.curve`) the bridge is the CURVE server on all five sockets, as a kernel is:
what passes over loopback between a client and the bridge is encrypted, and a client without
the kernel's public key gets nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from kernel_mgmt.protocol import DELIM, Session

from . import _wire

log = logging.getLogger("kernel_mgmt_provider_gateway")

__all__ = ["MAX_ROUTES", "Bridge"]

#: Requests whose reply has not come yet, per channel, whose sender is remembered.
MAX_ROUTES = 10000
_REPLAY_HISTORY = 4096
_REQUEST_CHANNELS = ("shell", "control", "stdin")
_SNDMORE_NOBLOCK = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
_NOBLOCK = int(zmq.NOBLOCK)
# pyzmq's compiled send, called on the asyncio sockets: their send_multipart makes a Future
# per message, which the relay (sending from the websocket reader) never needs.
_zsend = zmq.backend.Socket.send


def _send(sock: Any, frames: list[bytes]) -> None:
    """Send one message now (zmq.Again if the peer's queue is full: libzmq queues multipart
    messages atomically, so nothing is half sent)."""
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        _zsend(sock, frame, _SNDMORE_NOBLOCK if i < last else _NOBLOCK)


class Bridge:
    """Relays one remote kernel's channels; see the module docstring.

    ``on_dead(reason)`` is called (on the bridge's loop) the first time the remote kernel
    is seen to be gone.
    """

    def __init__(
        self, key: str, kernel_label: str, curve: tuple[bytes, bytes | None] | None = None
    ) -> None:
        self.key = key
        #: ``(public, secret)`` Curve keys (Z85 bytes) when the sockets encrypt, else None.
        self.curve = curve
        self.label = kernel_label
        self.session = Session(key)
        self.ports: dict[str, int] = {}
        self.v1 = True
        self.dead_reason: str | None = None
        self._ctx: zmq.asyncio.Context | None = None
        self._socks: dict[str, zmq.asyncio.Socket] = {}
        self._ws: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._routes: dict[str, dict[str, list[bytes]]] = {c: {} for c in _REQUEST_CHANNELS}
        self._last_ident: dict[str, list[bytes]] = {}
        self._seen: set[bytes] = set()
        self._seen_order: deque[bytes] = deque()
        self._dead_callbacks: list[Callable[[str], None]] = []
        self._closing = False

    # -- setup --------------------------------------------------------------------------------

    def __repr__(self) -> str:  # the keys stay out: reprs end up in logs
        encrypted = " curve" if self.curve is not None else ""
        return f"<Bridge {self.label} ports {sorted(self.ports.values())}{encrypted}>"

    def bind(self) -> dict[str, int]:
        """Bind the five sockets on 127.0.0.1 (OS-chosen ports: no allocation race), as CURVE
        servers when the bridge has Curve keys (set before binding, as libzmq requires)."""
        from kernel_mgmt.curve import apply_server_options

        self._ctx = zmq.asyncio.Context()
        kinds = {
            "shell": zmq.ROUTER,
            "control": zmq.ROUTER,
            "stdin": zmq.ROUTER,
            "iopub": zmq.XPUB,
            "hb": zmq.ROUTER,
        }
        for channel, kind in kinds.items():
            sock = self._ctx.socket(kind)
            sock.setsockopt(zmq.LINGER, 0)
            if channel == "iopub":
                sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscription gets a welcome
            if self.curve is not None:
                apply_server_options(sock, self.curve)
            port = sock.bind_to_random_port("tcp://127.0.0.1")
            self._socks[channel] = sock
            self.ports[f"{channel}_port"] = port
        return dict(self.ports)

    def attach(self, websocket: Any) -> None:
        """Start relaying between the bound sockets and ``websocket`` (an open connection)."""
        self._ws = websocket
        self.v1 = getattr(websocket, "subprotocol", None) == _wire.V1_PROTOCOL
        loop = asyncio.get_running_loop()
        for channel in _REQUEST_CHANNELS:
            self._tasks.append(loop.create_task(self._from_client(channel)))
        self._tasks.append(loop.create_task(self._subscriptions()))
        self._tasks.append(loop.create_task(self._heartbeat()))
        self._tasks.append(loop.create_task(self._from_gateway()))

    def on_dead(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` once the remote kernel is gone (at once if it is)."""
        if self.dead_reason is not None:
            callback(self.dead_reason)
        else:
            self._dead_callbacks.append(callback)

    def mark_dead(self, reason: str) -> None:
        """The remote kernel is gone: stop answering the heartbeat, tell the manager."""
        if self.dead_reason is not None:
            return
        self.dead_reason = reason
        log.debug("%s: %s", self.label, reason)
        for callback in self._dead_callbacks:
            try:
                callback(reason)
            except Exception:
                log.exception("gateway bridge death callback failed")
        self._dead_callbacks.clear()

    async def close(self) -> None:
        """Stop relaying; close the websocket and every socket (linger 0)."""
        self._closing = True
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(BaseException):  # cancelled, or failed and logged
                    await task
        self._tasks.clear()
        if self._ws is not None:
            try:
                await asyncio.wait_for(self._ws.close(), 2)
            except Exception:
                log.debug("closing the gateway websocket failed", exc_info=True)
            self._ws = None
        for sock in self._socks.values():
            sock.close(linger=0)
        self._socks.clear()
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    # -- client → gateway ---------------------------------------------------------------------

    def _verified(self, frames: list[bytes]) -> tuple[list[bytes], list[bytes]] | None:
        """``(idents, message frames)`` of a correctly signed, unreplayed message, else None."""
        try:
            split = frames.index(DELIM)
        except ValueError:
            log.warning("%s: dropped a message without <IDS|MSG> delimiter", self.label)
            return None
        parts = frames[split + 2 :]
        if len(parts) < 4:
            log.warning("%s: dropped a message with %d frames", self.label, len(parts))
            return None
        signature = frames[split + 1]
        if self.key:
            if not hmac.compare_digest(signature, self.session.sign(parts[:4])):
                log.warning("%s: dropped a message with a wrong signature", self.label)
                return None
            # Replay protection as the message spec asks of kernels ("Wire protocol").
            if signature in self._seen:
                log.warning("%s: dropped a replayed message", self.label)
                return None
            self._seen.add(signature)
            self._seen_order.append(signature)
            if len(self._seen_order) > _REPLAY_HISTORY:
                self._seen.discard(self._seen_order.popleft())
        return frames[:split], parts

    def _remember(self, channel: str, header: bytes, idents: list[bytes]) -> None:
        try:
            msg_id = json.loads(header).get("msg_id")
        except (ValueError, AttributeError):
            msg_id = None
        self._last_ident[channel] = idents
        if not isinstance(msg_id, str):
            return
        routes = self._routes[channel]
        routes[msg_id] = idents
        if len(routes) > MAX_ROUTES:  # requests never answered must not pile up
            del routes[next(iter(routes))]

    async def _from_client(self, channel: str) -> None:
        sock = self._socks[channel]
        while True:
            frames = await sock.recv_multipart()
            checked = self._verified(frames)
            if checked is None or self.dead_reason is not None:
                continue  # a dead kernel's requests fail through the manager (KernelDied)
            idents, parts = checked
            if channel != "stdin":
                self._remember(channel, parts[0], idents)
            if self.v1:
                data: str | bytes = _wire.encode_v1(channel, parts)
            else:
                try:
                    data = _wire.encode_json(channel, parts)
                except ValueError:
                    log.warning("%s: dropped a %s message that is not JSON", self.label, channel)
                    continue
            try:
                await self._ws.send(data)
            except Exception as e:  # the websocket closed: the reader reports why
                log.debug("%s: sending on the websocket failed: %s", self.label, e)

    async def _subscriptions(self) -> None:
        """Welcome each new IOPub subscriber (``iopub_welcome``, JEP 65), so readiness is
        seen at once instead of after the next status message."""
        sock = self._socks["iopub"]
        while True:
            event = await sock.recv()
            if event[:1] == b"\x01":
                msg = self.session.msg(
                    "iopub_welcome", {"subscription": event[1:].decode("utf-8", "replace")}
                )
                await sock.send_multipart(self.session.serialize(msg))

    async def _heartbeat(self) -> None:
        """Echo each ping (protocol "Heartbeat for kernels") while the remote kernel lives."""
        sock = self._socks["hb"]
        while True:
            frames = await sock.recv_multipart()
            if self.dead_reason is None:
                await sock.send_multipart(frames)

    # -- gateway → client ---------------------------------------------------------------------

    async def _from_gateway(self) -> None:
        import websockets

        try:
            quickack = _quickack(self._ws)
            async for data in self._ws:
                quickack()
                try:
                    channel, parts = (
                        _wire.decode_v1(data)
                        if self.v1 and isinstance(data, bytes)
                        else _wire.decode_json(data)
                    )
                except _wire.WireError as e:
                    log.warning("%s: dropped a websocket message: %s", self.label, e)
                    continue
                if len(parts) < 4:
                    continue
                self._deliver(channel, parts)
        except websockets.ConnectionClosed as e:
            if not self._closing:
                code = e.rcvd.code if e.rcvd is not None else None
                how = f" (close code {code})" if code is not None else ""
                self.mark_dead(f"the gateway closed the kernel's websocket{how}")
            return
        if not self._closing:
            self.mark_dead("the gateway closed the kernel's websocket")

    def _deliver(self, channel: str, parts: list[bytes]) -> None:
        signed = [DELIM, self.session.sign(parts[:4]), *parts]
        if channel == "iopub":
            self._watch_iopub(parts)
            try:
                _send(self._socks["iopub"], signed)
            except zmq.Again:  # a subscriber past its high-water mark: PUB drops, as kernels do
                log.debug("%s: an IOPub subscriber is too slow; message dropped", self.label)
            return
        if channel not in self._routes:
            log.warning("%s: dropped a message on unknown channel %r", self.label, channel)
            return
        try:
            parent_id = json.loads(parts[1]).get("msg_id")
        except (ValueError, AttributeError):
            parent_id = None
        if channel == "stdin":  # input_request: to the client whose execute asked (its shell id)
            idents = self._routes["shell"].get(parent_id) or self._last_ident.get("shell")
        else:
            idents = self._routes[channel].pop(parent_id, None) or self._last_ident.get(channel)
        if idents is None:
            log.debug("%s: no client to route a %s reply to", self.label, channel)
            return
        try:
            _send(self._socks[channel], [*idents, *signed])
        except zmq.ZMQError as e:  # the client went away (ROUTER_MANDATORY is off: rare)
            log.debug("%s: could not deliver a %s message: %s", self.label, channel, e)

    def _watch_iopub(self, parts: list[bytes]) -> None:
        """Notice the kernel going away from what it and the gateway publish on IOPub."""
        if b'"status"' not in parts[0] and b'"shutdown_reply"' not in parts[0]:
            return
        try:
            msg_type = json.loads(parts[0]).get("msg_type")
            content = json.loads(parts[3]) if msg_type in ("status", "shutdown_reply") else {}
        except (ValueError, AttributeError):
            return
        if msg_type == "shutdown_reply":
            # ipykernel publishes its shutdown_reply on IOPub as it exits.
            self.mark_dead("the kernel shut down (shutdown_reply)")
        elif msg_type == "status":
            state = content.get("execution_state")
            if state == "dead":
                self.mark_dead("the gateway reports the kernel dead (its restart failed)")
            elif state == "restarting":
                self.mark_dead("the kernel died and the gateway restarted it (its state is lost)")


def _quickack(websocket: Any) -> Callable[[], None]:
    """A function re-arming TCP_QUICKACK on the websocket's socket (Linux), else a no-op."""
    import socket

    sock = websocket.transport.get_extra_info("socket") if hasattr(websocket, "transport") else None
    option = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or option is None:
        return lambda: None

    def arm() -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)

    arm()
    return arm


def run_loop_thread(name: str) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    """A new event loop running forever in a daemon thread."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    ready.wait(10)
    return loop, thread
