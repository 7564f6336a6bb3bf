"""Connection files: keys, 0600 files in the runtime dir, reading, channel URLs."""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path

import pytest

from kernel_mgmt import connection
from kernel_mgmt.connection import (
    CHANNELS,
    PORT_NAMES,
    ConnectionFileError,
    channel_url,
    is_loopback,
    new_key,
    read_connection_file,
    write_connection_file,
)

JC_KEYS = {
    "transport",
    "ip",
    "shell_port",
    "iopub_port",
    "stdin_port",
    "control_port",
    "hb_port",
    "key",
    "signature_scheme",
    "kernel_name",
}


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rt = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(rt))
    return rt


def test_names() -> None:
    assert CHANNELS == ("shell", "iopub", "stdin", "control", "hb")
    assert tuple(f"{c}_port" for c in CHANNELS) == PORT_NAMES


def test_new_key_is_256_random_bits() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    for key in keys:
        assert len(key) == 64
        int(key, 16)


def test_write_default_in_runtime_dir(runtime: Path) -> None:
    old = os.umask(0)  # even a permissive umask must not widen the file's mode
    try:
        path, info = write_connection_file(kernel_name="python3")
    finally:
        os.umask(old)
    p = Path(path)
    assert p.parent == runtime and p.name.startswith("kernel-") and p.suffix == ".json"
    assert uuid.UUID(p.name[len("kernel-") : -len(".json")]).version == 4  # kernel-<uuid4>.json
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    assert set(info) == JC_KEYS
    assert info["transport"] == "tcp" and info["ip"] == "127.0.0.1"
    assert info["signature_scheme"] == "hmac-sha256" and info["kernel_name"] == "python3"
    assert len({info[n] for n in PORT_NAMES}) == 5
    assert json.loads(p.read_text()) == info
    assert [x.name for x in runtime.iterdir()] == [p.name]  # no temporary file left


def test_write_keeps_given_values_and_overwrites_atomically(tmp_path: Path) -> None:
    target = tmp_path / "conn.json"
    target.write_text("old")
    target.chmod(0o644)
    path, info = write_connection_file(
        str(target), shell_port=5555, key=b"secret", ip="127.0.0.1", kernel_name="k"
    )
    assert path == str(target)
    assert info["shell_port"] == 5555 and info["key"] == "secret"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert read_connection_file(path) == info
    assert sorted(x.name for x in tmp_path.iterdir()) == ["conn.json"]


def test_write_ipc(tmp_path: Path) -> None:
    _path, info = write_connection_file(
        str(tmp_path / "c.json"), transport="ipc", ip=str(tmp_path / "kernel")
    )
    assert [info[n] for n in PORT_NAMES] == [1, 2, 3, 4, 5]
    assert channel_url(info, "hb") == f"ipc://{tmp_path}/kernel-5"


def test_jupyter_client_reads_ours_and_we_read_theirs(tmp_path: Path) -> None:
    from jupyter_client.blocking import BlockingKernelClient
    from jupyter_client.connect import write_connection_file as jc_write

    path, info = write_connection_file(str(tmp_path / "ours.json"), kernel_name="k")
    kc = BlockingKernelClient(connection_file=path)
    kc.load_connection_file()
    assert kc.get_connection_info(session=False) == {
        **{k: v for k, v in info.items() if k not in ("key", "kernel_name")},
        "key": info["key"].encode(),
    }

    jc_path, jc_info = jc_write(str(tmp_path / "theirs.json"), kernel_name="x")
    ours_view = read_connection_file(jc_path)
    assert ours_view["shell_port"] == jc_info["shell_port"]
    assert ours_view["key"] == jc_info["key"]  # str, as the file holds it


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(ConnectionFileError, match=r"missing\.json"):
        read_connection_file(str(missing))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConnectionFileError, match=r"bad\.json"):
        read_connection_file(str(bad))
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"ip": "127.0.0.1", "shell_port": 1}))
    with pytest.raises(ConnectionFileError, match="iopub_port"):
        read_connection_file(str(partial))
    listy = tmp_path / "list.json"
    listy.write_text("[]")
    with pytest.raises(ConnectionFileError, match="JSON object"):
        read_connection_file(str(listy))


def test_read_fills_defaults(tmp_path: Path) -> None:
    p = tmp_path / "minimal.json"
    p.write_text(json.dumps({"ip": "127.0.0.1", **dict.fromkeys(PORT_NAMES, 1)}))
    info = read_connection_file(str(p))
    assert info["transport"] == "tcp" and info["key"] == ""
    assert info["signature_scheme"] == "hmac-sha256"


def test_channel_url() -> None:
    info = {
        "transport": "tcp",
        "ip": "127.0.0.1",
        **{n: 5000 + i for i, n in enumerate(PORT_NAMES)},
    }
    assert [channel_url(info, c) for c in CHANNELS] == [
        f"tcp://127.0.0.1:{5000 + i}" for i in range(5)
    ]
    assert channel_url({**info, "ip": "::1"}, "shell") == "tcp://[::1]:5000"
    with pytest.raises(ValueError, match="unknown channel"):
        channel_url(info, "nope")


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.1.2.3") and is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("10.0.0.1")
    assert not is_loopback("example.com")


def test_connection_module_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, kernel_mgmt.connection as c; "
        "print(sorted(m for m in ('zmq', 'jsonschema', 'asyncio', 'pluggy', 'uuid', 'platform')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert connection.RESERVATION_SECONDS > 0


def test_failed_write_releases_its_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(blocker / "runtime"))
    before = set(connection._reserved)
    with pytest.raises(OSError):
        write_connection_file()
    with pytest.raises(OSError):
        write_connection_file(str(tmp_path / "missing-dir" / "kernel.json"))
    assert set(connection._reserved) == before  # not held for RESERVATION_SECONDS
