"""The websocket framings, checked both ways against jupyter_server's own functions."""

from __future__ import annotations

import json

import pytest
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)

from kernel_mgmt_provider_gateway import _wire

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
HEADER = {"msg_id": "m1", "msg_type": "comm_msg", "session": "s", "username": "u", "version": "5.3"}
FRAMES = [
    json.dumps(HEADER).encode(),
    json.dumps({"msg_id": "p0"}).encode(),
    json.dumps({"k": "é"}, ensure_ascii=False).encode(),
    json.dumps({"data": {"x": 1}}).encode(),
]


@pytest.mark.parametrize("buffers", [[], [PNG], [PNG, b"", b"\x00" * 10]])
def test_v1_both_ways(buffers: list[bytes]) -> None:
    frames = FRAMES + buffers
    ours = _wire.encode_v1("iopub", frames)
    assert ours == serialize_msg_to_ws_v1(frames, "iopub")
    channel, parts = deserialize_msg_from_ws_v1(ours)
    assert (channel, parts) == ("iopub", frames)
    assert _wire.decode_v1(serialize_msg_to_ws_v1(frames, "shell")) == ("shell", frames)


@pytest.mark.parametrize("buffers", [[], [PNG], [PNG, b"\x01\x02"]])
def test_json_both_ways(buffers: list[bytes]) -> None:
    data = _wire.encode_json("shell", FRAMES + buffers)
    if buffers:
        assert isinstance(data, bytes)
        msg = deserialize_binary_message(data)
        assert msg["buffers"] == buffers
    else:
        assert isinstance(data, str)
        msg = json.loads(data)
    assert msg["channel"] == "shell"
    assert msg["header"]["msg_id"] == "m1" and msg["metadata"] == {"k": "é"}
    # The server's way back (serialize_binary_message needs a buffers key).
    back = dict(msg, buffers=buffers)
    back["header"] = HEADER
    wire = serialize_binary_message(back) if buffers else json.dumps(back)
    channel, frames = _wire.decode_json(wire)
    assert channel == "shell"
    assert [json.loads(f) for f in frames[:4]] == [json.loads(f) for f in FRAMES]
    assert frames[4:] == buffers


@pytest.mark.parametrize("data", [b"", b"\x05" + b"\x00" * 7, b"\xff" * 40])
def test_v1_garbage_is_a_wire_error(data: bytes) -> None:
    with pytest.raises(_wire.WireError):
        _wire.decode_v1(data)


@pytest.mark.parametrize("data", ["not json", "[1]", '{"content": {}}', b"\x00\x00\x00\x09"])
def test_json_garbage_is_a_wire_error(data: str | bytes) -> None:
    with pytest.raises(_wire.WireError):
        _wire.decode_json(data)
