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


def test_protocol_import_is_stdlib_only_by_importtime() -> None:
    """``python -X importtime``: importing the protocol loads only the standard library (no
    asyncio, zmq, uuid or platform either) and kernel_mgmt's own light package root."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import kernel_mgmt.protocol"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("import time:")]
    names = [ln.rsplit("|", 1)[1].strip() for ln in lines[1:]]  # first line is the heading
    assert "kernel_mgmt.protocol" in names
    ours = names[names.index("site") + 1 :]  # what the import added to a started interpreter
    top = {name.split(".")[0] for name in ours}
    foreign = sorted(t for t in top if t not in sys.stdlib_module_names and t != "kernel_mgmt")
    assert foreign == []
    assert {m for m in ours if m.startswith("kernel_mgmt")} == {
        "kernel_mgmt",
        "kernel_mgmt._version",
        "kernel_mgmt.protocol",
    }
    heavy = {"asyncio", "zmq", "pluggy", "jsonschema", "uuid", "platform", "socket", "threading"}
    assert top & heavy == set()


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


# -- messages signed by jupyter_client, then damaged: each rejected with its own exception ----


def _theirs_frames(theirs: JCSession) -> list[bytes]:
    msg = theirs.msg("execute_request", {"code": "1"}, metadata={"m": 1})
    return theirs.serialize(msg, ident=[b"peer"])


@pytest.mark.parametrize("index", [3, 4, 5, 6], ids=["header", "parent", "metadata", "content"])
def test_theirs_tampered_in_any_signed_frame_is_rejected(theirs: JCSession, index: int) -> None:
    frames = _theirs_frames(theirs)
    assert frames[1] == DELIM
    frames[index] = frames[index].replace(b"}", b',"x":1}', 1)  # still valid JSON
    with pytest.raises(SignatureError, match="does not match"):
        Session(key=KEY).deserialize(frames)


def test_theirs_with_forged_or_case_changed_signature_is_rejected(theirs: JCSession) -> None:
    frames = _theirs_frames(theirs)
    for forged in (frames[2].upper(), frames[2][:-1], b"0" * 64, b"not hex at all"):
        with pytest.raises(SignatureError):
            Session(key=KEY).deserialize([*frames[:2], forged, *frames[3:]])
    Session(key=KEY).deserialize(frames)  # the intact one is accepted


def test_theirs_replayed_is_rejected(theirs: JCSession, ours: Session) -> None:
    frames = _theirs_frames(theirs)
    ours.deserialize(frames)
    with pytest.raises(ReplayedMessage, match="replayed"):
        ours.deserialize(list(frames))
    # A fresh message from the same peer is still fine: replay protection is per signature.
    ours.deserialize(_theirs_frames(theirs))


def test_theirs_unsigned_is_rejected_when_keyed(ours: Session) -> None:
    unkeyed = JCSession(key=b"")
    frames = unkeyed.serialize(unkeyed.msg("execute_request", {"code": "1"}))
    with pytest.raises(SignatureError, match="not signed"):
        ours.deserialize(frames)


@pytest.mark.parametrize("keep", range(6))
def test_theirs_truncated_is_malformed(theirs: JCSession, keep: int) -> None:
    frames = _theirs_frames(theirs)  # [ident, DELIM, sig, 4 JSON frames]
    with pytest.raises(MalformedMessage):
        Session(key=KEY).deserialize(frames[: 1 + keep])


def test_truncated_inside_a_frame(theirs: JCSession) -> None:
    frames = _theirs_frames(theirs)
    cut = [*frames[:-1], frames[-1][:-3]]
    with pytest.raises(SignatureError):  # with a key: the signature no longer matches
        Session(key=KEY).deserialize(cut)
    plain = JCSession(key=b"")
    frames = plain.serialize(plain.msg("execute_request", {"code": "1"}))
    with pytest.raises(MalformedMessage, match="content frame is not valid JSON"):
        Session().deserialize([*frames[:-1], frames[-1][:-3]])


def test_theirs_rejects_our_tampered_and_replayed(ours: Session) -> None:
    """The reference implementation agrees with us about what is damaged."""

    def jc() -> JCSession:
        return JCSession(key=KEY.encode(), signature_scheme="hmac-sha256")

    frames = ours.serialize(ours.msg("execute_request", {"code": "1"}))
    bad = [*frames[:-1], b'{"code": "2"}']
    with pytest.raises(ValueError, match="Invalid Signature"):
        jc().deserialize(jc().feed_identities(bad)[1])
    theirs = jc()
    theirs.deserialize(theirs.feed_identities(frames)[1])
    with pytest.raises(ValueError, match="Duplicate Signature"):
        theirs.deserialize(theirs.feed_identities(frames)[1])


def test_forged_copy_does_not_poison_replay_history(ours: Session) -> None:
    """Only verified signatures are remembered: a tampered copy carrying a genuine signature,
    arriving first, must not make the genuine message look replayed (jupyter_client records
    the signature before checking it)."""
    frames = Session(key=KEY).serialize(ours.msg("execute_request", {"code": "1"}))
    with pytest.raises(SignatureError):
        ours.deserialize([*frames[:-1], b'{"code": "2"}'])
    assert ours.deserialize(frames).content == {"code": "1"}


def test_deeply_nested_json_is_malformed_not_a_crash() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(MalformedMessage, match="nested too deeply"):
        Session().deserialize([DELIM, b"", deep, b"{}", b"{}", b"{}"])


def test_a_bad_message_does_not_break_the_receiving_loop(ours: Session) -> None:
    """Garbage, forged and replayed messages each raise a ProtocolError; the next good one
    on the same socket is received normally."""
    from kernel_mgmt.protocol import ProtocolError

    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    dealer = ctx.socket(zmq.DEALER)
    try:
        router.linger = dealer.linger = 0
        port = router.bind_to_random_port("tcp://127.0.0.1")
        dealer.connect(f"tcp://127.0.0.1:{port}")
        good = Session(key=KEY).serialize(ours.msg("kernel_info_request"))
        sends = [
            [b"garbage"],
            [DELIM, b"", b"{}"],
            Session(key="e" * 64).serialize(ours.msg("execute_request", {"code": "x"})),
            good,
            good,  # replayed
        ]
        for frames in sends:
            dealer.send_multipart(frames)
        outcomes = []
        for _ in sends:
            assert router.poll(5000)
            try:
                outcomes.append(ours.recv(router).msg_type)  # type: ignore[union-attr]
            except ProtocolError as e:
                outcomes.append(type(e).__name__)
        assert outcomes == [
            "MalformedMessage",
            "MalformedMessage",
            "SignatureError",
            "kernel_info_request",
            "ReplayedMessage",
        ]
    finally:
        router.close()
        dealer.close()
        ctx.term()


def test_str_keys_are_utf8_as_jupyter_client_reads_them() -> None:
    key = "clé-" + "0" * 60  # a connection file's key is text; jupyter_client encodes it utf-8
    ours, theirs = Session(key=key), JCSession(key=key.encode("utf-8"))
    got = theirs.deserialize(theirs.feed_identities(ours.serialize(ours.msg("status")))[1])
    assert got["msg_type"] == "status"
    assert ours.deserialize(theirs.serialize(theirs.msg("status"))).msg_type == "status"
