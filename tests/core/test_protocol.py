"""The wire protocol against jupyter_client's Session, the reference implementation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import zmq
from jupyter_client.session import Session as JCSession

from kernel_mgmt.protocol import (
    DELIM,
    PROTOCOL_VERSION,
    MalformedMessage,
    Message,
    ReplayedMessage,
    Session,
    SignatureError,
)

KEY = "0123456789abcdef" * 4


@pytest.fixture
def ours() -> Session:
    return Session(key=KEY)


@pytest.fixture
def theirs() -> JCSession:
    return JCSession(key=KEY.encode(), signature_scheme="hmac-sha256")


def test_message_has_dict_and_attribute_access(ours: Session) -> None:
    msg = ours.msg("execute_request", {"code": "1+1"})
    assert msg["content"] is msg.content
    assert msg.content == {"code": "1+1"}
    assert msg.msg_type == "execute_request" == msg["msg_type"]
    assert msg.msg_id == msg.header["msg_id"] == msg["msg_id"]
    assert msg.header["version"] == PROTOCOL_VERSION
    assert msg.header["session"] == ours.session_id
    assert msg.header["date"].endswith("Z")
    assert msg.parent_header == {} and msg.metadata == {} and msg.buffers == []


def test_msg_ids_are_unique(ours: Session) -> None:
    ids = {ours.msg("status").msg_id for _ in range(1000)}
    assert len(ids) == 1000


def test_parent_may_be_message_or_header(ours: Session) -> None:
    parent = ours.msg("execute_request", {"code": ""})
    assert ours.msg("status", parent=parent).parent_header == parent.header
    assert ours.msg("status", parent=parent.header).parent_header == parent.header


def test_theirs_accepts_ours(ours: Session, theirs: JCSession) -> None:
    msg = ours.msg("execute_request", {"code": "print('é')"}, metadata={"x": 1})
    frames = ours.serialize(msg, idents=[b"peer"])
    idents, rest = theirs.feed_identities(frames)
    assert idents == [b"peer"]
    got = theirs.deserialize(rest)
    assert got["content"] == {"code": "print('é')"}
    assert got["metadata"] == {"x": 1}
    assert got["header"]["msg_id"] == msg.msg_id
    assert got["msg_type"] == "execute_request"


def test_ours_accepts_theirs(ours: Session, theirs: JCSession) -> None:
    parent = theirs.msg("kernel_info_request")
    msg = theirs.msg("kernel_info_reply", {"status": "ok"}, parent=parent)
    frames = theirs.serialize(msg, ident=[b"a", b"b"])
    got = ours.deserialize(frames)
    assert isinstance(got, Message)
    assert got.idents == [b"a", b"b"]
    assert got.msg_type == "kernel_info_reply"
    assert got.content == {"status": "ok"}
    assert got.parent_header["msg_id"] == parent["header"]["msg_id"]


def test_buffers_round_trip(ours: Session, theirs: JCSession) -> None:
    msg = ours.msg("comm_msg", {"data": {}})
    msg["buffers"] = [b"\x00\x01", b"raw"]
    got = theirs.deserialize(theirs.feed_identities(ours.serialize(msg))[1])
    assert [bytes(b) for b in got["buffers"]] == [b"\x00\x01", b"raw"]
    back = ours.deserialize(Session(key=KEY).serialize(msg))
    assert back.buffers == [b"\x00\x01", b"raw"]


def test_tampered_content_is_rejected(ours: Session) -> None:
    frames = ours.serialize(ours.msg("execute_request", {"code": "1"}))
    frames[-1] = json.dumps({"code": "import os; os.system('rm -rf /')"}).encode()
    with pytest.raises(SignatureError, match="does not match"):
        Session(key=KEY).deserialize(frames)


def test_wrong_key_is_rejected(ours: Session) -> None:
    frames = Session(key="f" * 64).serialize(ours.msg("execute_request", {"code": "1"}))
    with pytest.raises(SignatureError):
        ours.deserialize(frames)


def test_unsigned_is_rejected_when_keyed(ours: Session) -> None:
    frames = Session(key=b"").serialize(ours.msg("execute_request", {"code": "1"}))
    assert frames[1] == b""
    with pytest.raises(SignatureError, match="not signed"):
        ours.deserialize(frames)


def test_replay_is_rejected(ours: Session) -> None:
    frames = Session(key=KEY).serialize(ours.msg("execute_request", {"code": "1"}))
    ours.deserialize(frames)
    with pytest.raises(ReplayedMessage):
        ours.deserialize(frames)
    assert issubclass(ReplayedMessage, SignatureError)


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        ([b"no delimiter", b"{}"], "delimiter"),
        ([DELIM, b"", b"{}", b"{}"], "expected signature"),
        ([DELIM, b"", b"{not json", b"{}", b"{}", b"{}"], "not valid JSON"),
        ([DELIM, b"", b"[1, 2]", b"{}", b"{}", b"{}"], "not object"),
        ([DELIM, b"", b"{}", b"{}", b"{}", b"{}"], "msg_type"),
        ([DELIM, b"", b"\xff\xfe", b"{}", b"{}", b"{}"], "not valid JSON"),
    ],
)
def test_malformed_frames(frames: list[bytes], match: str) -> None:
    with pytest.raises(MalformedMessage, match=match):
        Session(key=b"").deserialize(frames)


def test_truncated_signed_message_is_rejected(ours: Session) -> None:
    frames = Session(key=KEY).serialize(ours.msg("execute_request", {"code": "1"}))
    with pytest.raises(MalformedMessage):
        ours.deserialize(frames[:-1])


def test_unsigned_sessions_interoperate() -> None:
    a, b = Session(), Session()
    got = b.deserialize(a.serialize(a.msg("status", {"execution_state": "idle"})))
    assert got.content["execution_state"] == "idle"


def test_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="signature_scheme"):
        Session(key=KEY, signature_scheme="rot13")


def test_non_json_content_types_are_encoded(ours: Session) -> None:
    import datetime

    msg = ours.msg("x", {"when": datetime.datetime(2020, 1, 1), "raw": b"\x01", "s": {1}})
    got = Session(key=KEY).deserialize(ours.serialize(msg))
    assert got.content == {"when": "2020-01-01T00:00:00Z", "raw": "AQ==", "s": [1]}
    with pytest.raises(TypeError, match="not JSON serializable"):
        ours.serialize(ours.msg("x", {"bad": object()}))


def test_protocol_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, kernel_mgmt.protocol as p; "
        "bad = [m for m in ('zmq', 'asyncio', 'pluggy', 'jsonschema') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_send_and_recv_over_real_sockets(ours: Session, theirs: JCSession) -> None:
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    dealer = ctx.socket(zmq.DEALER)
    try:
        router.linger = dealer.linger = 0
        port = router.bind_to_random_port("tcp://127.0.0.1")
        dealer.connect(f"tcp://127.0.0.1:{port}")
        sent = theirs.send(dealer, "kernel_info_request", {})
        assert router.poll(5000)
        got = ours.recv(router)
        assert got is not None and got.msg_id == sent["header"]["msg_id"]
        assert len(got.idents) == 1
        reply = ours.send(
            router, "kernel_info_reply", {"status": "ok"}, parent=got, idents=got.idents
        )
        assert dealer.poll(5000)
        _, back = theirs.recv(dealer)
        assert back["parent_header"]["msg_id"] == sent["header"]["msg_id"]
        assert back["header"]["msg_id"] == reply.msg_id
        assert ours.recv(router, zmq.NOBLOCK) is None
    finally:
        router.close()
        dealer.close()
        ctx.term()
