"""The Jupyter wire protocol: message framing, signing and verification.

A message on a ZeroMQ socket is a list of frames (messaging spec, "The Wire Protocol")::

    [ident, ..., b"<IDS|MSG>", signature, header, parent_header, metadata, content, buffer, ...]

The signature is the hex HMAC of the four JSON frames, keyed with the connection file's ``key``
under its ``signature_scheme``. This module is imported by kernels at start-up, so it depends on
the standard library only: no zmq import (sockets are duck-typed), no asyncio, no jsonschema.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

__all__ = [
    "DELIM",
    "PROTOCOL_VERSION",
    "MalformedMessage",
    "Message",
    "ProtocolError",
    "ReplayedMessage",
    "Session",
    "SignatureError",
    "new_id",
    "utcnow_iso",
]

#: The protocol version we speak and stamp into every header.
PROTOCOL_VERSION = "5.3"
#: Separates routing identities from the message proper.
DELIM = b"<IDS|MSG>"

# Enough signatures to cover any realistic replay window without unbounded growth
# (jupyter_client keeps the same number).
_REPLAY_HISTORY = 1 << 16


class ProtocolError(ValueError):
    """A message could not be accepted; the connection itself stays usable."""


class MalformedMessage(ProtocolError):
    """The frames do not form a Jupyter message (no delimiter, missing frames, bad JSON)."""


class SignatureError(ProtocolError):
    """The message's HMAC signature is missing or wrong: it is not from a holder of the key."""


class ReplayedMessage(SignatureError):
    """A correctly signed message was received a second time (replay protection)."""


def new_id() -> str:
    """A new unique id for a message or session: 128 random bits, hex.

    ``os.urandom`` rather than ``uuid.uuid4`` because ``uuid`` imports ``platform``, which costs
    a kernel milliseconds at start-up; ids only need to be unique.
    """
    return os.urandom(16).hex()


def utcnow_iso() -> str:
    """The current time in ISO-8601 with an explicit UTC ``Z``, as headers carry it."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Message(dict):
    """A Jupyter message: a dict with jupyter_client's keys, also readable as attributes.

    ``msg["content"]`` and ``msg.content`` are the same object. ``msg.idents`` holds the ZeroMQ
    routing identities the message arrived with (ROUTER sockets), and is not part of the dict.
    """

    __slots__ = ("idents",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.idents: list[bytes] = []

    @property
    def header(self) -> dict[str, Any]:
        return self["header"]

    @property
    def parent_header(self) -> dict[str, Any]:
        return self["parent_header"]

    @property
    def metadata(self) -> dict[str, Any]:
        return self["metadata"]

    @property
    def content(self) -> dict[str, Any]:
        return self["content"]

    @property
    def buffers(self) -> list[Any]:
        return self.get("buffers", [])

    @property
    def msg_id(self) -> str:
        return self["header"].get("msg_id", "")

    @property
    def msg_type(self) -> str:
        return self["header"].get("msg_type", "")

    def __repr__(self) -> str:
        return f"<Message {self.msg_type} {self.msg_id}>"


def _json_default(obj: Any) -> Any:
    """Encode the few non-JSON types kernels commonly put into content."""
    if isinstance(obj, datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=UTC)
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        import base64  # rare: kept off a kernel's start-up path

        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable in a Jupyter message")


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)


_decode = json.JSONDecoder().decode
_FRAME_NAMES = ("header", "parent_header", "metadata", "content")


def _dumps(obj: Any) -> bytes:
    return _encoder.encode(obj).encode("utf-8")


def _as_bytes(frame: Any) -> bytes:
    if isinstance(frame, bytes):
        return frame
    data = getattr(frame, "bytes", None)  # zmq.Frame when received with copy=False
    if isinstance(data, bytes):
        return data
    return bytes(frame)


def _header_of(parent: Mapping[str, Any] | None) -> dict[str, Any]:
    """The header to use as parent_header: a message's header, or a header given directly."""
    if not parent:
        return {}
    header = parent.get("header")
    if isinstance(header, Mapping):
        return dict(header)
    return dict(parent)


_SCHEMES = {"hmac-sha256": hashlib.sha256, "hmac-sha512": hashlib.sha512, "hmac-md5": hashlib.md5}


class Session:
    """Builds, signs, serializes and verifies messages for one side of a connection.

    :param key: the shared HMAC key (the connection file's ``key``); empty disables signing,
        as the spec allows, in which case nothing is verified either.
    :param signature_scheme: ``hmac-sha256`` (the default everywhere) or another ``hmac-*``.
    :param session_id: the ``session`` stamped into headers; a new one when omitted.
    :param check_replay: reject a signed message whose signature was already seen.
    """

    def __init__(
        self,
        key: bytes | str = b"",
        signature_scheme: str = "hmac-sha256",
        session_id: str | None = None,
        username: str | None = None,
        check_replay: bool = True,
    ) -> None:
        self.key: bytes = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if signature_scheme not in _SCHEMES:
            raise ValueError(
                f"unsupported signature_scheme {signature_scheme!r}; "
                f"use one of {', '.join(sorted(_SCHEMES))}"
            )
        self.signature_scheme = signature_scheme
        self.session_id = session_id or new_id()
        self.username = username or os.environ.get("USER", "kernel_mgmt")
        self.check_replay = check_replay
        self._auth = hmac.new(self.key, digestmod=_SCHEMES[signature_scheme]) if self.key else None
        self._seen: set[bytes] = set()
        self._seen_order: deque[bytes] = deque()

    # -- building -----------------------------------------------------------------------------

    def msg_header(self, msg_type: str) -> dict[str, Any]:
        """A fresh header for a message of ``msg_type`` from this session."""
        return {
            "msg_id": new_id(),
            "msg_type": msg_type,
            "username": self.username,
            "session": self.session_id,
            "date": utcnow_iso(),
            "version": PROTOCOL_VERSION,
        }

    def msg(
        self,
        msg_type: str,
        content: Mapping[str, Any] | None = None,
        parent: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> Message:
        """Build a message; ``parent`` (a message or a header) becomes its parent_header."""
        hdr = dict(header) if header is not None else self.msg_header(msg_type)
        return Message(
            header=hdr,
            msg_id=hdr.get("msg_id", ""),
            msg_type=hdr.get("msg_type", msg_type),
            parent_header=_header_of(parent),
            metadata=dict(metadata) if metadata else {},
            content=dict(content) if content is not None else {},
            buffers=[],
        )

    # -- signing ------------------------------------------------------------------------------

    def sign(self, parts: Iterable[bytes]) -> bytes:
        """The hex signature of the four JSON frames; ``b""`` when signing is disabled."""
        if self._auth is None:
            return b""
        h = self._auth.copy()
        for part in parts:
            h.update(part)
        return h.hexdigest().encode("ascii")

    # -- wire format --------------------------------------------------------------------------

    def serialize(self, msg: Mapping[str, Any], idents: Sequence[bytes] = ()) -> list[bytes]:
        """The frames for ``msg``, preceded by routing ``idents``."""
        parts = [
            _dumps(msg["header"]),
            _dumps(msg.get("parent_header") or {}),
            _dumps(msg.get("metadata") or {}),
            _dumps(msg.get("content") or {}),
        ]
        frames = [*idents, DELIM, self.sign(parts), *parts]
        buffers = msg.get("buffers")
        if buffers:
            frames.extend(buffers)
        return frames

    def deserialize(self, frames: Sequence[Any]) -> Message:
        """Parse and verify received frames.

        :raises MalformedMessage: no delimiter, too few frames, or frames that are not JSON objects.
        :raises SignatureError: a missing or wrong signature while a key is set.
        :raises ReplayedMessage: a signature already seen.
        """
        raw = [f if type(f) is bytes else _as_bytes(f) for f in frames]
        try:
            split = raw.index(DELIM)
        except ValueError:
            raise MalformedMessage("no <IDS|MSG> delimiter among the frames") from None
        if len(raw) - split - 1 < 5:
            raise MalformedMessage(
                f"expected signature and 4 JSON frames after <IDS|MSG>, got {len(raw) - split - 1}"
            )
        signature = raw[split + 1]
        parts = raw[split + 2 : split + 6]
        if self._auth is not None:
            if not signature:
                raise SignatureError("message is not signed but the connection requires a key")
            if not hmac.compare_digest(signature, self.sign(parts)):
                raise SignatureError("message signature does not match (wrong key or tampered)")
            if self.check_replay:
                if signature in self._seen:
                    raise ReplayedMessage("message signature was already seen (replayed message)")
                self._remember(signature)
        decoded = []
        for name, part in zip(_FRAME_NAMES, parts, strict=True):
            try:
                value = _decode(part.decode("utf-8"))
            except ValueError as e:  # includes UnicodeDecodeError and JSONDecodeError
                raise MalformedMessage(f"{name} frame is not valid JSON: {e}") from None
            except RecursionError:  # "[[[[..." nested past the decoder's limit
                raise MalformedMessage(f"{name} frame is JSON nested too deeply") from None
            if type(value) is not dict:
                raise MalformedMessage(f"{name} frame is a JSON {type(value).__name__}, not object")
            decoded.append(value)
        header = decoded[0]
        if not isinstance(header.get("msg_type"), str):
            raise MalformedMessage("header has no msg_type")
        msg = Message(
            header=header,
            msg_id=header.get("msg_id", ""),
            msg_type=header["msg_type"],
            parent_header=decoded[1],
            metadata=decoded[2],
            content=decoded[3],
            buffers=raw[split + 6 :],
        )
        msg.idents = raw[:split]
        return msg

    def _remember(self, signature: bytes) -> None:
        self._seen.add(signature)
        self._seen_order.append(signature)
        if len(self._seen_order) > _REPLAY_HISTORY:
            self._seen.discard(self._seen_order.popleft())

    # -- sockets ------------------------------------------------------------------------------

    def send(
        self,
        socket: Any,
        msg_or_type: Mapping[str, Any] | str,
        content: Mapping[str, Any] | None = None,
        parent: Mapping[str, Any] | None = None,
        idents: Sequence[bytes] | None = None,
        buffers: Sequence[Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> Message:
        """Build (unless given a message), sign and send on a zmq socket; returns the message.

        Works with plain and ``zmq.asyncio`` sockets alike: ``send_multipart`` queues the frames
        at once, so there is nothing to await.
        """
        if isinstance(msg_or_type, str):
            msg = self.msg(msg_or_type, content, parent, metadata, header)
        else:
            msg = msg_or_type if isinstance(msg_or_type, Message) else Message(msg_or_type)
        if buffers:
            msg["buffers"] = list(buffers)
        socket.send_multipart(self.serialize(msg, idents or ()))
        return msg

    def recv(self, socket: Any, flags: int = 0) -> Message | None:
        """Receive one message from a plain (sync) zmq socket; None when NOBLOCK finds none."""
        try:
            frames = socket.recv_multipart(flags)
        except Exception as e:  # zmq.Again, without importing zmq here
            if type(e).__name__ == "Again":
                return None
            raise
        return self.deserialize(frames)
