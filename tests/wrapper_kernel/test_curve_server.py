"""wrapper_kernel as a CURVE server: the kernelspecs it installs declare support, it binds
all five sockets with the connection file's keys, and its start-up imports nothing more for
it (``python -X importtime``). Without keys it behaves as before (the rest of this folder).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zmq

from kernel_mgmt.client_base import KernelClient
from kernel_mgmt.connection import write_connection_file
from wrapper_kernel.examples.echo import EchoKernel
from wrapper_kernel.install import kernel_spec

from .test_install_and_startup import _imported_modules


def test_installed_kernelspec_declares_curve() -> None:
    spec = kernel_spec(EchoKernel, module="wrapper_kernel.examples.echo")
    assert spec["metadata"]["supported_encryption"] == ["curve"]


def test_install_command_writes_the_declaration(tmp_path: Path) -> None:
    module = "wrapper_kernel.examples.echo"
    p = subprocess.run(
        [sys.executable, "-m", module, "install", "--prefix", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    (kernel_json,) = (tmp_path / "share" / "jupyter" / "kernels").glob("*/kernel.json")
    assert json.loads(kernel_json.read_text())["metadata"]["supported_encryption"] == ["curve"]


async def _run_echo(tmp_path: Path, keyed: bool, name: str) -> tuple[dict[str, Any], str]:
    """Start the echo kernel under -X importtime (with or without keys), run one execute with
    our client, shut it down; ``(connection info, its stderr)``."""
    extra: dict[str, Any] = {}
    if keyed:
        public, secret = zmq.curve_keypair()
        extra = {"curve_publickey": public.decode(), "curve_secretkey": secret.decode()}
    path, info = write_connection_file(str(tmp_path / f"{name}.json"), **extra)
    log = tmp_path / f"{name}.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "wrapper_kernel.examples.echo", "-f", path],
            stderr=err,
        )
        try:
            kc = KernelClient(info, use_heartbeat=False)
            try:
                await kc.wait_for_ready(timeout=60)
                reply = await kc.execute_interactive("hi", output_hook=lambda m: None, timeout=60)
                assert reply.content["status"] == "ok"
                await kc.shutdown()
            finally:
                await kc.close()
            assert proc.wait(timeout=30) == 0
        finally:
            proc.kill()
            proc.wait(timeout=30)
    return info, log.read_text()


async def test_curve_start_up_imports_nothing_more(tmp_path: Path) -> None:
    keyed_info, keyed = await _run_echo(tmp_path, True, "keyed")
    _, plain = await _run_echo(tmp_path, False, "plain")
    with_keys, without = _imported_modules(keyed), _imported_modules(plain)
    assert "kernel_mgmt.curve" in without  # always imported: a few µs of stdlib-only code
    assert with_keys - without == set(), sorted(with_keys - without)
    assert keyed_info["curve_secretkey"] not in keyed


async def test_a_plain_client_cannot_reach_a_keyed_kernel(tmp_path: Path) -> None:
    """Every socket is a CURVE server: shell, control and heartbeat all stay silent to a
    client without keys (iopub: tests/integration/test_curve_interop.py)."""
    public, secret = zmq.curve_keypair()
    path, info = write_connection_file(
        str(tmp_path / "k.json"),
        curve_publickey=public.decode(),
        curve_secretkey=secret.decode(),
    )
    proc = subprocess.Popen([sys.executable, "-m", "wrapper_kernel.examples.echo", "-f", path])
    try:
        kc = KernelClient(info, use_heartbeat=False)
        try:
            await kc.wait_for_ready(timeout=60)  # the keyed client is served
        finally:
            await kc.close()
        ctx = zmq.Context.instance()
        for channel, kind in (("shell", zmq.DEALER), ("control", zmq.DEALER), ("hb", zmq.REQ)):
            sock = ctx.socket(kind)
            sock.linger = 0
            sock.connect(f"tcp://127.0.0.1:{info[f'{channel}_port']}")
            # Anything at all would do: a reply to a signed request, or the heartbeat echo.
            sock.send(b"ping")
            assert not sock.poll(1000), channel
            sock.close()
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.mark.parametrize(
    "keys",
    [
        {"curve_publickey": "short", "curve_secretkey": "x" * 40},
        {"curve_secretkey": zmq.curve_keypair()[1].decode()},
    ],
    ids=["malformed", "secret-without-public"],
)
def test_bad_keys_stop_start_up_with_a_clear_error(tmp_path: Path, keys: dict[str, str]) -> None:
    path, _ = write_connection_file(str(tmp_path / "k.json"), **keys)
    p = subprocess.run(
        [sys.executable, "-m", "wrapper_kernel.examples.echo", "-f", path],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1
    assert p.stderr.startswith("EchoKernel: ") and "curve_" in p.stderr
    assert "Traceback" not in p.stderr
    for value in keys.values():
        assert value not in p.stderr
