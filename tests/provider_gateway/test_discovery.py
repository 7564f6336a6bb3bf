"""Discovery through real gateways: kernel types, metadata, and every way it can go wrong."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import kernel_mgmt_provider_gateway as provider
from kernel_mgmt.discovery import KernelFinder
from kernel_mgmt_provider_gateway import _discover

from .conftest import LAUNCH_SCHEMA, Gateway

BIN = Path(sys.executable).parent


def _kernel_mgmt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "kernel-mgmt"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def _gateway_info(finder: KernelFinder):
    return next(i for i in finder.providers if i.id == "gateway")


def test_kernel_types_and_metadata(gateway: Gateway) -> None:
    finder = KernelFinder.from_entrypoints({})
    kernels = dict(finder.find_kernels())
    attrs = kernels["gateway/python3"]
    assert attrs["display_name"] == f"Python 3 ({gateway.kind})"
    assert attrs["language"] == "python"
    assert attrs["language_info"] == {"name": "python"}
    assert attrs["metadata"]["launch_parameter_schema"] == LAUNCH_SCHEMA
    assert attrs["metadata"]["debugger"] is True
    assert attrs["gateway"]["url"] == gateway.url
    info = _gateway_info(finder)
    assert info.status == "ok" and info.kernels == 2  # python3 and echo
    assert info.note == f"gateway {gateway.url} (from KERNEL_MGMT_GATEWAY_URL)"
    # Other providers still list next to it.
    assert any(k.startswith("pyimport/") for k in kernels)


def test_cli_lists_gateway_kernels(gateway: Gateway) -> None:
    out = _kernel_mgmt("list", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert "gateway/python3" in data["kernels"]
    assert data["problems"] == []


@pytest.fixture
def doomed(tmp_path: Path, local_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    """A gateway of its own, to be stopped by the test."""
    gw = Gateway("kg", tmp_path / "doomed")
    gw.extra = []
    gw.start()
    try:
        monkeypatch.setenv("KERNEL_MGMT_GATEWAY_URL", gw.url)
        monkeypatch.setenv("KERNEL_MGMT_GATEWAY_TOKEN", gw.token)
        provider.load_config({})
        yield gw
    finally:
        gw.stop()


def test_short_lived_cache(doomed: Gateway) -> None:
    """Answers are kept for cache_ttl seconds: a stopped gateway is noticed after that."""
    settings = provider._settings()
    first = dict(_discover.find_kernelspecs(settings))
    first["python3"]["display_name"] = "changed by a caller"
    doomed.stop()
    again = dict(_discover.find_kernelspecs(settings))  # from the cache: the gateway is gone
    assert again["python3"]["display_name"] == "Python 3 (kg)"  # callers get copies
    provider.load_config({"gateway": {"cache_ttl": 0}})
    with pytest.raises(provider.GatewayError, match="cannot reach gateway"):
        _discover.find_kernelspecs(provider._settings())


def test_not_configured_lists_nothing_and_says_why(local_env: Path) -> None:
    finder = KernelFinder.from_entrypoints({})
    assert not [k for k, _ in finder.find_kernels() if k.startswith("gateway/")]
    info = _gateway_info(finder)
    assert info.status == "ok" and info.kernels == 0
    assert info.note == provider.NOT_CONFIGURED
    assert finder.problems == []  # not an error: nothing logged on every listing
    out = _kernel_mgmt("providers")
    assert out.returncode == 0
    row = next(line for line in out.stdout.splitlines() if line.startswith("gateway "))
    assert " ok " in row and "no gateway configured" in row
    assert "KERNEL_MGMT_GATEWAY_URL" in row
    listing = _kernel_mgmt("list")
    assert listing.returncode == 0 and "gateway" not in listing.stderr


def test_wrong_token_is_a_clear_403(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both gateways answer a wrong token with 401 (403 gets the same advice): the message
    names the URL and what to fix, and never shows the token."""
    monkeypatch.setenv("KERNEL_MGMT_GATEWAY_TOKEN", "wrong-token-value")
    finder = KernelFinder.from_entrypoints({})
    kernels = [k for k, _ in finder.find_kernels()]
    assert not [k for k in kernels if k.startswith("gateway/")]
    assert any(k.startswith("pyimport/") for k in kernels)
    info = _gateway_info(finder)
    assert info.status == "failed"
    status = "HTTP 401 Unauthorized"
    assert status in info.reason and gateway.url in info.reason
    assert "the token given was refused" in info.reason
    assert "token" in info.reason and "KERNEL_MGMT_GATEWAY_TOKEN" in info.reason
    out = _kernel_mgmt("providers")
    assert status in out.stdout
    assert "wrong-token-value" not in out.stdout + out.stderr


def test_stopped_gateway_is_only_its_own_problem(doomed: Gateway) -> None:
    url = doomed.url
    assert "gateway/python3" in dict(KernelFinder.from_entrypoints({}).find_kernels())
    doomed.stop()
    _discover.clear_cache()
    finder = KernelFinder.from_entrypoints({})
    kernels = [k for k, _ in finder.find_kernels()]
    assert any(k.startswith("pyimport/") for k in kernels)
    assert not [k for k in kernels if k.startswith("gateway/")]
    info = _gateway_info(finder)
    assert info.status == "failed"
    assert f"cannot reach gateway {url}" in info.reason
    assert "ConnectError" in info.reason
    out = _kernel_mgmt("list")
    assert out.returncode == 0
    assert "pyimport/kernel" in out.stdout
    assert f"cannot reach gateway {url}" in out.stderr
    assert doomed.token not in out.stdout + out.stderr


@pytest.fixture
def silent_server() -> Iterator[tuple[str, list[bytes]]]:
    """A TCP server that reads each request's head and never answers: a hung gateway."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    heads: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn = server.accept()[0]
            except OSError:
                continue
            held.append(conn)
            conn.settimeout(2)
            data = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            heads.append(data)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", heads
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def test_slow_gateway_times_out_within_its_timeout(
    local_env: Path, silent_server: tuple[str, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It also shows what goes on the wire: the token and the configured headers."""
    url, heads = silent_server
    monkeypatch.setenv("KERNEL_MGMT_GATEWAY_URL", url)
    monkeypatch.setenv("KERNEL_MGMT_GATEWAY_TOKEN", "tok-123")
    config = {"gateway": {"timeout": 0.5, "headers": {"X-Team": "blue"}}}
    finder = KernelFinder.from_entrypoints(config)
    kernels = [k for k, _ in finder.find_kernels()]
    assert any(k.startswith("pyimport/") for k in kernels)
    info = _gateway_info(finder)
    assert info.status == "failed"
    assert f"gateway {url} did not answer listing kernelspecs within 0.5 s" in info.reason
    assert "tok-123" not in info.reason
    (head,) = heads
    lines = head.decode().split("\r\n")
    assert lines[0] == "GET /api/kernelspecs HTTP/1.1"
    assert "authorization: token tok-123" in [line.lower() for line in lines]
    assert "x-team: blue" in [line.lower() for line in lines]


def test_not_a_gateway(local_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An ordinary web server (python -m http.server) at the URL: a 404 that says so."""
    port_file = tmp_path / "port"
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import http.server, sys\n"
            "s = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\n"
            f"open({str(port_file)!r}, 'w').write(str(s.server_address[1]))\n"
            "s.serve_forever()\n",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if port_file.exists() and port_file.read_text():
                break
            threading.Event().wait(0.05)
        monkeypatch.setenv("KERNEL_MGMT_GATEWAY_URL", f"http://127.0.0.1:{port_file.read_text()}")
        finder = KernelFinder.from_entrypoints({})
        list(finder.find_kernels())
        reason = _gateway_info(finder).reason
        assert "HTTP 404" in reason and "Jupyter Kernel Gateway or Enterprise Gateway" in reason
    finally:
        server.kill()
        server.wait(10)


def test_bad_config_is_reported_at_load(local_env: Path) -> None:
    finder = KernelFinder.from_entrypoints({"gateway": {"url": "ftp://nope"}})
    info = _gateway_info(finder)
    assert info.status == "failed"
    assert "gateway.url" in info.reason and "http://" in info.reason
