"""Shared fixtures and helpers for the launcher and manager tests: private Jupyter dirs,
manager cleanup, and one signed request/reply over a kernel channel."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from kernel_mgmt.connection import channel_url
from kernel_mgmt.curve import apply_client_options, curve_keys
from kernel_mgmt.protocol import Session
from kernel_mgmt.subproc.manager import KernelManager

TIMEOUT = 30


@pytest.fixture
def jupyter_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private runtime/data/path dirs for this test; returns the runtime dir."""
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "path"))
    return runtime


@pytest.fixture
async def reaper() -> AsyncIterator[list[KernelManager]]:
    """Collects managers; kills and cleans them up whatever the test did."""
    managers: list[KernelManager] = []
    yield managers
    for m in managers:
        await m.kill()
        await m.cleanup()


def use_curve_keys(sock: zmq.Socket, info: dict[str, Any]) -> None:
    """Make *sock* a CURVE client when the kernel's connection info carries keys."""
    keys = curve_keys(info)
    if keys is not None:
        apply_client_options(sock, keys)


def channel_request(
    info: dict[str, Any],
    msg_type: str,
    content: dict[str, Any] | None = None,
    channel: str = "shell",
    timeout: float = TIMEOUT,
) -> dict[str, Any]:
    """Send one request with our protocol layer on *channel*; return its reply's content."""
    session = Session(info["key"], info["signature_scheme"])
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    use_curve_keys(sock, info)
    try:
        sock.connect(channel_url(info, channel))
        sent = session.send(sock, msg_type, content or {})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sock.poll(int((deadline - time.monotonic()) * 1000) + 1):
                reply = session.recv(sock)
                if reply and reply.parent_header.get("msg_id") == sent.msg_id:
                    return reply.content
        raise TimeoutError(f"no reply to {msg_type} on {channel}")
    finally:
        sock.close()
