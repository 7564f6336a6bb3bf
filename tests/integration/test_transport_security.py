"""Security pass over the wire and the files, for ipykernel and the wrapper echo kernel as our
launcher starts them (encrypted, the default for both):

* connection files are 0600 in a 0700 runtime dir, IPC sockets in a private 0700 dir, also
  when the wrapper kernel rewrites its file after picking ports itself;
* a kernel listens on 127.0.0.1 only, on the five ports of its connection info (ipykernel:
  plus its own loopback pipe for subprocess output);
* the HMAC key and the Curve secret key never appear in logs, the kernel's stderr, reprs or
  error messages (``--json`` output: see test_curve_policy.py);
* a client with a wrong Curve key gets nothing: see test_curve_interop.py.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kernel_mgmt.client_base import ConnectionInfoError, KernelClient
from kernel_mgmt.connection import PORT_NAMES
from kernel_mgmt.curve import redact
from kernel_mgmt.subproc.launcher import SubprocessIPCKernelLauncher

from .curve_support import (
    KERNELS,
    code_for,
    curve_env,  # noqa: F401  (fixture, used below)
    finder_for,
    kernel_listening,
    launched,
    round_trip,
)

pytestmark = pytest.mark.usefixtures("curve_env")
ECHO_ARGV = [sys.executable, "-m", "wrapper_kernel.examples.echo"]


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("kernel", KERNELS)
async def test_files_private_and_binds_only_what_the_file_says(tmp_path: Path, kernel: str) -> None:
    async with launched(finder_for(tmp_path), kernel) as (info, km):
        assert "curve_secretkey" in info
        assert mode(km.connection_file) == 0o600
        assert mode(os.path.dirname(km.connection_file)) == 0o700
        status, _ = await round_trip("asyncio", info, code_for(kernel, "m")[0])  # fully up
        assert status == "ok"
        listening = kernel_listening(km.pid)
        channels = {("127.0.0.1", info[name]) for name in PORT_NAMES}
        assert {addr for addr, _ in listening} == {"127.0.0.1"}
        if kernel == "echo":
            assert listening == channels
        else:
            # ipykernel also binds one random loopback port of its own: the PULL socket of
            # its IOPub thread that forked subprocesses send their output to (iostream.py,
            # "pipe"). Loopback only, as checked above.
            assert channels <= listening and len(listening - channels) <= 1


async def test_ipc_dir_and_files_private_with_keys() -> None:
    launcher = SubprocessIPCKernelLauncher(
        [*ECHO_ARGV, "-f", "{connection_file}"],
        kernel_metadata={"supported_encryption": ["curve"]},
        transport_encryption="required",
    )
    info, km = await launcher.launch()
    try:
        assert await round_trip("asyncio", info, "ipc") == ("ok", "ipc")
        folder = os.path.dirname(info["ip"])
        assert mode(folder) == 0o700
        assert mode(km.connection_file) == 0o600
        sockets = [f"{info['ip']}-{info[name]}" for name in PORT_NAMES]
        assert all(stat.S_ISSOCK(os.stat(s).st_mode) for s in sockets)
        assert kernel_listening(km.pid) == set()  # no TCP at all
    finally:
        await km.kill()
        await km.cleanup()
    assert not os.path.exists(folder)


async def test_kernel_rewriting_its_file_keeps_it_private_and_keyed(tmp_path: Path) -> None:
    """Ports 0: the wrapper kernel binds random ports and rewrites its connection file; the
    rewrite is 0600 too and keeps the Curve keys, which the kernel uses."""
    import zmq

    public, secret = zmq.curve_keypair()
    info = {
        "transport": "tcp",
        "ip": "127.0.0.1",
        **dict.fromkeys(PORT_NAMES, 0),
        "key": os.urandom(32).hex(),
        "signature_scheme": "hmac-sha256",
        "curve_publickey": public.decode(),
        "curve_secretkey": secret.decode(),
    }
    path = tmp_path / "own.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    proc = subprocess.Popen([*ECHO_ARGV, "-f", str(path)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            written = json.loads(path.read_text())
            if all(written[name] for name in PORT_NAMES):
                break
            time.sleep(0.05)
        assert mode(path) == 0o600
        assert written["curve_secretkey"] == info["curve_secretkey"]
        assert await round_trip("asyncio", written, "rebound") == ("ok", "rebound")
        assert kernel_listening(proc.pid) == {("127.0.0.1", written[n]) for n in PORT_NAMES}
    finally:
        proc.kill()
        _, stderr = proc.communicate(timeout=30)
    assert info["key"] not in stderr and info["curve_secretkey"] not in stderr


@pytest.mark.parametrize("kernel", KERNELS)
async def test_secrets_never_logged(
    tmp_path: Path, kernel: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Everything our code logs at DEBUG, and everything the kernel writes to stderr, for a
    whole launch → execute → failing request → shutdown, holds neither secret."""
    caplog.set_level(logging.DEBUG)
    async with launched(finder_for(tmp_path), kernel) as (info, km):
        kc = KernelClient(info, km)
        try:
            await kc.wait_for_ready(timeout=60)
            await kc.execute_interactive(code_for(kernel, "logged")[0], timeout=60)
            await kc.execute_interactive("1/0" if kernel == "ipykernel" else "", timeout=60)
            texts = [repr(km), repr(kc), str(kc.kernel_info_dict)]
            await kc.shutdown_or_terminate(timeout=30)
        finally:
            await kc.close()
        await km.wait(30)
        texts.append(km.stderr_tail())
    texts.append(caplog.text)
    secrets = (info["key"], info["curve_secretkey"])
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_bad_keys_are_named_not_shown(tmp_path: Path) -> None:
    """Malformed Curve keys: the error names the key and the file, never the value."""
    import zmq

    public, secret = zmq.curve_keypair()
    bad_secret = secret.decode()[:-1]  # 39 characters of a real secret key
    info: dict[str, Any] = {
        "transport": "tcp",
        "ip": "127.0.0.1",
        **dict(zip(PORT_NAMES, range(1, 6), strict=True)),
        "key": os.urandom(32).hex(),
        "curve_publickey": public.decode(),
        "curve_secretkey": bad_secret,
    }
    with pytest.raises(ConnectionInfoError) as err:
        KernelClient(info)
    assert "curve_secretkey" in str(err.value) and bad_secret not in str(err.value)

    path = tmp_path / "bad.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    p = subprocess.run([*ECHO_ARGV, "-f", str(path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "curve_secretkey" in p.stderr and str(path) in p.stderr
    assert bad_secret not in p.stderr and info["key"] not in p.stderr
    assert "Traceback" not in p.stderr

    shown = redact(info)
    assert shown["key"] == shown["curve_secretkey"] == "<hidden>"
    assert shown["curve_publickey"] == info["curve_publickey"]
