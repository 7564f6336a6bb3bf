"""Security pass over the gateway bridge (issue 14, item 5), against the real gateways:

* its connection file is 0600 in a 0700 runtime dir, and cleanup removes it;
* it listens on 127.0.0.1 only, on exactly the five ports of its connection info (this test
  process's own sockets, read from /proc: never a machine-wide list);
* the HMAC key, the Curve secret key and the gateway token never appear in logs (everything
  logged at DEBUG, the websocket and HTTP libraries' included), ``--json`` output, reprs or
  error messages; nor in the kernelspec folders ``kernel-mgmt-jupyter sync`` writes for
  gateway types.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kernel_mgmt.client import KernelClient
from kernel_mgmt.client_base import KernelDied
from kernel_mgmt.connection import PORT_NAMES
from kernel_mgmt.discovery import KernelFinder

from ..integration.curve_support import kernel_listening
from .conftest import Gateway

BIN = Path(sys.executable).parent
TYPE = "gateway/python3"
#: A configured header whose value is as secret as the token (an API key, a cookie).
SECRET_HEADER = ("X-Api-Key", "hdr-" + "5ec7e7")


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_connection_file_private_and_removed_by_cleanup(gateway: Gateway) -> None:
    finder = KernelFinder.from_entrypoints({})
    info, km = await finder.launch(TYPE)
    path = km.connection_file
    try:
        assert mode(path) == 0o600
        assert mode(os.path.dirname(path)) == 0o700
        assert Path(path).parent == Path(os.environ["JUPYTER_RUNTIME_DIR"])
        on_disk = json.loads(Path(path).read_text())
        assert on_disk["key"] == info["key"] and on_disk["curve_secretkey"]
    finally:
        await km.kill()
        await km.cleanup()
    assert not os.path.exists(path)
    assert list(Path(path).parent.iterdir()) == []  # no temporary file left either


async def test_binds_only_loopback_and_only_its_ports(gateway: Gateway) -> None:
    """The bridge runs in this process: what this process listens on after the launch, less
    what it listened on before, is the bridge's five ports on 127.0.0.1, nothing else."""
    before = kernel_listening(os.getpid())
    finder = KernelFinder.from_entrypoints({})
    info, km = await finder.launch(TYPE)
    try:
        kc = KernelClient(info, km)
        try:
            await kc.wait_for_ready(timeout=60)  # fully up, every channel used
            assert (await kc.execute_interactive("1", timeout=60)).content["status"] == "ok"
        finally:
            await kc.close()
        new = kernel_listening(os.getpid()) - before
        assert new == {("127.0.0.1", info[name]) for name in PORT_NAMES}
    finally:
        await km.kill()
        await km.cleanup()
    assert kernel_listening(os.getpid()) - before == set()


async def test_secrets_never_logged_shown_or_in_errors(
    kg: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole life at DEBUG: launch, execute, a failing cell, a badly signed message (the
    bridge logs a warning), a client with other Curve keys, the kernel deleted from outside
    (a KernelDied error), cleanup. No log record, repr or error message holds a secret."""
    import zmq

    caplog.set_level(logging.DEBUG)
    finder = KernelFinder.from_entrypoints({"gateway": {"headers": dict([SECRET_HEADER])}})
    info, km = await finder.launch(TYPE)
    texts: list[str] = []
    try:
        kc = KernelClient(info, km)
        try:
            await kc.wait_for_ready(timeout=60)
            await kc.execute_interactive("print('logged')", timeout=60)
            failed = await kc.execute_interactive("1/0", timeout=60)
            assert failed.content["status"] == "error"
            intruder = KernelClient(dict(info, key="0" * 64))  # right Curve keys, wrong HMAC
            try:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(intruder.kernel_info(), 2)
            finally:
                await intruder.close()
            public, secret = zmq.curve_keypair()
            stranger = KernelClient(
                dict(info, curve_publickey=public.decode(), curve_secretkey=secret.decode())
            )
            try:
                with pytest.raises(TimeoutError):
                    await stranger.wait_for_ready(timeout=1.5)
            finally:
                await stranger.close()
            remote = km.remote
            texts += [repr(km), repr(remote), repr(remote.bridge), repr(remote.config)]
            texts += [repr(kc), str(kc.kernel_info_dict), repr(info.keys())]
            async with httpx.AsyncClient(headers=kg.headers) as http:
                r = await http.delete(f"{kg.url}/api/kernels/{km.remote_kernel_id}", timeout=30)
            assert r.status_code == 204
            assert not await km.wait(20)  # seen gone
            with pytest.raises(KernelDied) as died:
                await asyncio.wait_for(kc.execute("1"), 20)
            texts += [str(died.value), repr(died.value), str(km.death_reason)]
        finally:
            await kc.close()
    finally:
        await km.kill()
        await km.cleanup()
    texts.append(caplog.text)
    assert "dropped a message with a wrong signature" in caplog.text  # the logs were captured
    # websockets logs each handshake header at DEBUG: the credentials are there, hidden.
    assert "> Authorization: token <hidden>" in caplog.text
    assert f"> {SECRET_HEADER[0]}: <hidden>" in caplog.text
    secrets = {
        "HMAC key": info["key"],
        "Curve secret key": info["curve_secretkey"],
        "gateway token": kg.token,
        "secret header": SECRET_HEADER[1],
    }
    for text in texts:
        for what, secret in secrets.items():
            assert secret not in text, f"{what} shown in {text[:200]!r}"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_cli_json_and_errors_hold_no_token(kg: Gateway, local_env: Path) -> None:
    """``list/providers/run --json``, a failing cell, a kernel type the gateway does not have:
    the token (and a configured secret header) never appears in what the CLI prints."""
    (local_env / "config.toml").write_text(
        f'[gateway]\nheaders = {{ "{SECRET_HEADER[0]}" = "{SECRET_HEADER[1]}" }}\n'
    )
    outputs = []
    listed = _cli("kernel-mgmt", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert TYPE in json.loads(listed.stdout)["kernels"]
    outputs.append(listed)
    providers = _cli("kernel-mgmt", "providers", "--json")
    assert providers.returncode == 0
    outputs.append(providers)
    run = _cli("kernel-mgmt", "run", TYPE, "--json", "-c", "print(6 * 7); 1/0")
    assert run.returncode != 0 and "ZeroDivisionError" in run.stdout + run.stderr
    outputs.append(run)
    missing = _cli("kernel-mgmt", "run", "gateway/no-such-kernel", "-c", "1")
    assert missing.returncode != 0 and "no-such-kernel" in missing.stderr
    outputs.append(missing)
    for out in outputs:
        for secret in (kg.token, SECRET_HEADER[1]):
            assert secret not in out.stdout + out.stderr


def test_synced_kernelspecs_hold_no_secrets(kg: Gateway, tmp_path: Path) -> None:
    """``kernel-mgmt-jupyter sync`` writes a folder for each gateway type: nothing in it
    names the token, a secret header or a key (only the type id and its metadata)."""
    prefix = tmp_path / "prefix"
    out = _cli("kernel-mgmt-jupyter", "sync", "--prefix", str(prefix), "--json")
    assert out.returncode == 0, out.stderr
    kernels = prefix / "share" / "jupyter" / "kernels"
    folder = kernels / "gateway__python3"
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["metadata"]["kernel_provisioner"]["config"]["type_id"] == TYPE
    assert spec["metadata"]["supported_encryption"] == ["curve"]
    for path in kernels.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert kg.token.encode() not in data, path
            for word in (b"curve_secretkey", b"Authorization", b'"key"'):
                assert word not in data, (word, path)
    assert kg.token not in out.stdout + out.stderr


def test_reprs_of_the_config_hide_the_token() -> None:
    from kernel_mgmt_provider_gateway._config import parse_config

    config = parse_config(
        {"url": "http://127.0.0.1:1", "token": "tok-" + "abc", "headers": dict([SECRET_HEADER])},
        environ={},
    )
    shown = repr(config) + str(config)
    assert "tok-abc" not in shown and SECRET_HEADER[1] not in shown
    assert config.http_headers()["Authorization"] == "token tok-abc"  # still sent


@pytest.mark.parametrize("source", ["config", "env"])
def test_a_url_with_credentials_is_refused_without_showing_them(source: str) -> None:
    """Messages name the gateway's URL, so it may hold no password: a clear error that
    says where to put credentials instead, and does not repeat them."""
    from kernel_mgmt.config import ConfigError
    from kernel_mgmt_provider_gateway._config import ENV_URL, parse_config

    url = "https://alice:" + "pa55w0rd" + "@eg.example.org:8888"
    section, environ = ({"url": url}, {}) if source == "config" else ({}, {ENV_URL: url})
    with pytest.raises(ConfigError) as err:
        parse_config(section, environ=environ)
    message = str(err.value)
    assert "pa55w0rd" not in message and "alice" not in message
    assert "credentials" in message and "token_env" in message
    assert ("gateway.url" if source == "config" else ENV_URL) in message
