"""Kernel messages on the gateway's ``/api/kernels/<id>/channels`` websocket.

Two framings, as Jupyter Server speaks them:

- ``v1.kernel.websocket.jupyter.org`` (the subprotocol, where the server selects it): one
  binary websocket message per kernel message: an 8-byte little-endian count ``n`` of
  offsets, ``n`` 8-byte little-endian offsets, then the channel name and the message's
  frames (header, parent_header, metadata, content, buffers...) exactly as on ZeroMQ, minus
  routing identities, delimiter and signature. The frames pass through untouched.
- the legacy JSON protocol (no subprotocol): a text message holding one JSON object with
  ``header``, ``parent_header``, ``metadata``, ``content`` and ``channel``; a message with
  binary buffers is a binary websocket message instead: a 4-byte big-endian buffer count
  ``n``, ``n`` 4-byte big-endian offsets, the JSON object, then the buffers.
"""

from __future__ import annotations

import json
import struct
from itertools import pairwise
from typing import Any

__all__ = [
    "V1_PROTOCOL",
    "WireError",
    "decode_json",
    "decode_v1",
    "encode_json",
    "encode_v1",
]

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
_FIELDS = ("header", "parent_header", "metadata", "content")


class WireError(ValueError):
    """A websocket message that is not a kernel message in the expected framing."""


def encode_v1(channel: str, frames: list[bytes]) -> bytes:
    """One v1 websocket message for ``frames`` (header, parent, metadata, content, buffers)."""
    name = channel.encode("ascii")
    count = len(frames) + 2  # offsets of the channel, of each frame, and of the end
    offsets = [8 * (count + 1)]
    offsets.append(offsets[0] + len(name))
    for frame in frames:
        offsets.append(offsets[-1] + len(frame))
    return b"".join([struct.pack(f"<{count + 1}Q", count, *offsets), name, *frames])


def decode_v1(data: bytes) -> tuple[str, list[bytes]]:
    """``(channel, frames)`` of a v1 websocket message.

    :raises WireError: for a message whose offsets do not fit it.
    """
    if len(data) < 8:
        raise WireError(f"v1 kernel message of {len(data)} bytes is too short")
    (count,) = struct.unpack_from("<Q", data)
    if count < 2 or 8 * (count + 1) > len(data):
        raise WireError(f"v1 kernel message with {count} offsets does not fit its length")
    offsets = struct.unpack_from(f"<{count}Q", data, 8)
    if any(b < a for a, b in pairwise(offsets)) or offsets[-1] > len(data):
        raise WireError("v1 kernel message offsets are not increasing within the message")
    view = memoryview(data)
    channel = bytes(view[offsets[0] : offsets[1]]).decode("ascii", "replace")
    frames = [bytes(view[a:b]) for a, b in pairwise(offsets[1:])]
    return channel, frames


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def encode_json(channel: str, frames: list[bytes]) -> str | bytes:
    """One legacy-protocol websocket message (text, or binary when there are buffers)."""
    msg: dict[str, Any] = {
        name: json.loads(frame) for name, frame in zip(_FIELDS, frames[:4], strict=True)
    }
    msg["channel"] = channel
    buffers = frames[4:]
    if not buffers:
        return json.dumps(msg, ensure_ascii=False)
    parts = [_dumps(msg), *buffers]
    offsets = [4 * (len(parts) + 1)]
    for part in parts[:-1]:
        offsets.append(offsets[-1] + len(part))
    return b"".join([struct.pack(f"!{len(parts) + 1}I", len(parts), *offsets), *parts])


def decode_json(data: str | bytes) -> tuple[str, list[bytes]]:
    """``(channel, frames)`` of a legacy-protocol websocket message.

    :raises WireError: for a message that is not a JSON kernel message.
    """
    buffers: list[bytes] = []
    try:
        if isinstance(data, str):
            msg = json.loads(data)
        else:
            (count,) = struct.unpack_from("!I", data)
            if count < 1 or 4 * (count + 1) > len(data):
                raise WireError(f"binary kernel message with {count} parts does not fit")
            offsets = [*struct.unpack_from(f"!{count}I", data, 4), len(data)]
            chunks = [data[a:b] for a, b in pairwise(offsets)]
            msg = json.loads(chunks[0])
            buffers = list(chunks[1:])
    except (ValueError, struct.error) as e:
        raise WireError(f"websocket message is not a JSON kernel message: {e}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("header"), dict):
        raise WireError("websocket message is not a kernel message (no header object)")
    msg.pop("buffers", None)
    channel = msg.get("channel") or "shell"
    frames = [_dumps(msg.get(name) or {}) for name in _FIELDS]
    return str(channel), [*frames, *buffers]
