"""CurveZMQ and the security pass for kernels jupyter_client launches through the bridge.

* Our policy decides (default ``auto``), not jupyter_client's ``transport_encryption`` trait
  (default ``disabled``): an ipykernel launched by an ``AsyncKernelManager`` through the
  ``kernel-mgmt`` provisioner gets keys, and jupyter_client's own clients use them.
* jupyter_client's ``required`` is this launch's policy: met when the kernel type supports
  CurveZMQ (even if our config says ``disabled``), a clear error naming the kernel type when
  it does not, or when its kernelspec turns encryption off (nothing left running).
* Connection files are 0600 in a 0700 runtime dir; ``kernel-mgmt-jupyter sync`` writes no
  secret into kernelspec folders.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager

from kernel_mgmt.curve import ENV_POLICY, TransportEncryptionError
from kernel_mgmt_jupyter import KernelFinderSpecManager

from ..integration.curve_support import jupyter_client_for, stop_jupyter_client
from .conftest import World, execute, ipykernel_spec, write_spec

TIMEOUT = 60


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
async def manager(world: World) -> AsyncIterator[Any]:
    """``await manager(name, **start_kernel_kwargs)`` -> a started AsyncKernelManager; every
    kernel is shut down afterwards."""
    started: list[AsyncKernelManager] = []

    async def _start(name: str, **kwargs: Any) -> AsyncKernelManager:
        km = AsyncKernelManager(kernel_name=name, kernel_spec_manager=KernelFinderSpecManager())
        started.append(km)
        await km.start_kernel(cwd=str(world.tmp), **kwargs)
        return km

    yield _start
    for km in started:
        if km.has_kernel:
            await km.shutdown_kernel(now=True)


async def round_trip(km: AsyncKernelManager, code: str = "print(6 * 7)") -> str:
    """Execute *code* with jupyter_client's own async client of *km*; its stdout."""
    client = km.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=TIMEOUT)
        reply, out = await execute(client, code, TIMEOUT)
    finally:
        client.stop_channels()
    assert reply["status"] == "ok", reply
    return out


def blocking_round_trip(connection_file: str) -> str:
    """jupyter_client's BlockingKernelClient from the connection file alone (it reads the
    Curve keys there)."""
    from kernel_mgmt.connection import read_connection_file

    kc = jupyter_client_for(read_connection_file(connection_file))
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        out: list[str] = []
        reply = kc.execute_interactive(
            "print(7 * 6)",
            timeout=TIMEOUT,
            output_hook=lambda m: out.append(m["content"].get("text", "")),
        )
        assert reply["content"]["status"] == "ok"
        return "".join(out)
    finally:
        stop_jupyter_client(kc)


async def test_encrypted_by_default_and_files_private(world: World, manager: Any) -> None:
    world.runtime.rmdir()  # the world made it 0755; the launch makes it (0700) again
    km = await manager("python3")
    assert km.transport_encryption == "disabled"  # jupyter_client's default: ours decides
    assert km.provisioner.type_id == "spec/python3"
    info = km.get_connection_info()
    assert info["curve_publickey"] and info["curve_secretkey"]
    path = km.connection_file
    assert path == km.provisioner.manager.connection_file
    assert mode(path) == 0o600 and mode(os.path.dirname(path)) == 0o700
    on_disk = json.loads(Path(path).read_text())
    assert on_disk["curve_secretkey"] == info["curve_secretkey"]
    assert await round_trip(km) == "42\n"
    import asyncio

    assert await asyncio.to_thread(blocking_round_trip, path) == "42\n"


async def test_our_policy_can_turn_it_off(
    world: World, manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_POLICY, "disabled")
    km = await manager("python3")
    assert km.curve_publickey is None
    assert "curve_publickey" not in json.loads(Path(km.connection_file).read_text())
    assert await round_trip(km) == "42\n"


async def test_jupyter_required_is_met_even_against_our_config(
    world: World, manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``transport_encryption='required'`` from jupyter_client wins over a config saying
    ``disabled``: the kernel type supports CurveZMQ, so it gets keys."""
    config = world.tmp / "kernel_mgmt.toml"
    config.write_text('transport_encryption = "disabled"\n')
    monkeypatch.setenv("KERNEL_MGMT_CONFIG", str(config))
    km = await manager("python3", transport_encryption="required")
    assert km.transport_encryption == "required"
    assert km.curve_publickey is not None
    assert await round_trip(km) == "42\n"
    # The trait set in jupyter config works the same way (no start_kernel argument).
    km2 = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=KernelFinderSpecManager())
    km2.transport_encryption = "required"
    await km2.start_kernel(cwd=str(world.tmp))
    try:
        assert km2.curve_publickey is not None
    finally:
        await km2.shutdown_kernel(now=True)


async def test_required_for_a_type_without_support_fails_clearly(
    world: World, manager: Any
) -> None:
    """A kernelspec folder written for our provisioner that claims support for a kernel type
    that does not declare it: jupyter_client's own check passes, our launcher refuses before
    anything starts, naming the kernel type."""
    write_spec(world.kernels, "old", ipykernel_spec("Old"))  # spec/old: no declaration
    write_spec(
        world.kernels,
        "claims",
        ipykernel_spec(
            "Claims",
            metadata={
                "supported_encryption": ["curve"],
                "kernel_provisioner": {
                    "provisioner_name": "kernel-mgmt",
                    "config": {"type_id": "spec/old"},
                },
            },
        ),
    )
    with pytest.raises(TransportEncryptionError) as err:
        await manager("claims", transport_encryption="required")
    message = str(err.value)
    assert "old" in message and "supported_encryption" in message and "'auto'" in message
    assert world.connection_files() == []
    # jupyter_client itself refuses a kernelspec that does not declare support.
    with pytest.raises(RuntimeError, match="supported_encryption"):
        await manager("old", transport_encryption="required")
    assert world.connection_files() == []


async def test_required_but_the_kernelspec_turns_it_off(world: World, manager: Any) -> None:
    """The kernelspec declares support but sets metadata.transport_encryption 'disabled'
    (which beats a launch's policy): the kernel starts without keys, so the provisioner stops
    it again and says why; no process or connection file is left."""
    import psutil

    spec = ipykernel_spec(
        "Plain", metadata={"supported_encryption": ["curve"], "transport_encryption": "disabled"}
    )
    write_spec(world.kernels, "plain", spec)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(TransportEncryptionError) as err:
        await manager("plain", transport_encryption="required")
    message = str(err.value)
    assert "spec/plain" in message and "'disabled'" in message and "'auto'" in message
    assert world.connection_files() == []
    left = [
        p
        for p in psutil.Process().children(recursive=True)
        if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE
    ]
    assert left == []
    # Without 'required' the same kernelspec starts, plain.
    km = await manager("plain")
    assert km.curve_publickey is None
    assert await round_trip(km) == "42\n"


async def test_sync_writes_no_secrets(world: World, manager: Any) -> None:
    """While a kernel runs: its HMAC key, Curve secret key and connection file path appear
    in no file of the kernelspec folders sync writes."""
    import asyncio
    import subprocess

    km = await manager("python3")
    info = km.get_connection_info()
    prefix = world.tmp / "synced"
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "kernel_mgmt_jupyter.cli", "sync", "--prefix", str(prefix)],
        env=world.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    target = prefix / "share" / "jupyter" / "kernels"
    assert (target / "pyimport__kernel" / "kernel.json").is_file()
    secrets = [
        info["key"].decode() if isinstance(info["key"], bytes) else info["key"],
        info["curve_secretkey"],
        km.connection_file,
    ]
    files = [p for p in target.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in data, path
        assert "curve_secretkey" not in data and '"key"' not in data
