"""kernel_mgmt.connection.reusing_connection: a restart keeps the previous kernel's connection.

Real kernels (ipykernel) through the subprocess launchers: the new kernel listens on the same
ports (tcp) or socket paths (ipc) with the same key, signature scheme and Curve key pair, so a
client holding the old connection info reaches it; a port that is no longer free means fresh
ports, never a failed launch; the port registry keeps its guarantees.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from typing import Any

import pytest

from kernel_mgmt import connection
from kernel_mgmt.client import KernelClient
from kernel_mgmt.connection import PORT_NAMES, reused_connection, reusing_connection
from kernel_mgmt.discovery import KernelFinder
from kernel_mgmt.restarter import AsyncKernelRestarter
from kernel_mgmt.subproc.launcher import SubprocessIPCKernelLauncher, SubprocessKernelLauncher

from .conftest import TIMEOUT, channel_request

IPYKERNEL = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
CURVE = {"supported_encryption": ["curve"]}  # what ipykernel >= 7.3 declares
KEPT = (*PORT_NAMES, "transport", "ip", "key", "signature_scheme")


def _ports(info: dict[str, Any]) -> list[int]:
    return [info[n] for n in PORT_NAMES]


async def _stop(km: Any) -> None:
    await km.kill()
    await km.cleanup()


def test_the_context_is_scoped_and_copies_the_info() -> None:
    info = {"transport": "tcp", "ip": "127.0.0.1", "shell_port": 1}
    assert reused_connection() is None
    with reusing_connection(info):
        got = reused_connection()
        assert got == info and got is not info
        with reusing_connection(None):
            assert reused_connection() is None
        assert reused_connection() == info
    assert reused_connection() is None


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "curve"])
async def test_a_relaunch_keeps_ports_key_and_curve_keys_when_free(
    jupyter_env: Any, reaper: list, encrypted: bool
) -> None:
    metadata = CURVE if encrypted else {}
    launcher = SubprocessKernelLauncher(IPYKERNEL, kernel_id="reused", kernel_metadata=metadata)
    old_info, old = await launcher.launch()
    reaper.append(old)
    assert ("curve_publickey" in old_info) is encrypted
    assert channel_request(old_info, "kernel_info_request")["status"] == "ok"
    await _stop(old)  # a restart's order: the old kernel exits and is cleaned up first
    assert not any(p in connection._reserved for p in _ports(old_info))

    with reusing_connection(old_info):
        new_info, new = await launcher.launch()
    reaper.append(new)
    assert new.pid != old.pid
    for name in KEPT:
        assert new_info[name] == old_info[name], name
    if encrypted:
        assert new_info["curve_publickey"] == old_info["curve_publickey"]
        assert new_info["curve_secretkey"] == old_info["curve_secretkey"]
    assert connection.read_connection_file(new.connection_file)["key"] == old_info["key"]
    # The old connection info reaches the new kernel (a client made before the restart).
    assert channel_request(old_info, "kernel_info_request", timeout=TIMEOUT)["status"] == "ok"
    # The ports are the new kernel's now: reserved again, and the old manager's cleanup
    # (called again, as jupyter_client may) does not give them away.
    await old.cleanup()
    assert all(p in connection._reserved for p in _ports(new_info))
    assert connection.reclaim_ports(_ports(new_info)) == new_info["shell_port"]
    await _stop(new)
    assert not any(p in connection._reserved for p in _ports(new_info))


async def test_a_port_taken_meanwhile_means_fresh_ports_and_a_debug_log(
    jupyter_env: Any, reaper: list, caplog: pytest.LogCaptureFixture
) -> None:
    launcher = SubprocessKernelLauncher(IPYKERNEL, kernel_id="taken")
    old_info, old = await launcher.launch()
    reaper.append(old)
    await _stop(old)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", old_info["iopub_port"]))
    squatter.listen()
    try:
        with caplog.at_level(logging.DEBUG, "kernel_mgmt.connection"), reusing_connection(old_info):
            new_info, new = await launcher.launch()
        reaper.append(new)
    finally:
        squatter.close()
    assert old_info["iopub_port"] not in _ports(new_info)
    assert new_info["key"] == old_info["key"]  # the key is kept all the same
    assert f"port {old_info['iopub_port']} is not free" in caplog.text
    # None of the old ports stays reserved by the attempt (all or nothing).
    others = [p for p in _ports(old_info) if p not in _ports(new_info)]
    assert not any(p in connection._reserved for p in others)
    assert channel_request(new_info, "kernel_info_request")["status"] == "ok"


async def test_a_port_reserved_by_another_launch_is_not_reused(jupyter_env: Any) -> None:
    """The old manager has not released its ports (or someone else holds one): fresh ones."""
    held = connection.allocate_ports(n=5)
    try:
        previous = {
            "transport": "tcp",
            "ip": "127.0.0.1",
            **dict(zip(PORT_NAMES, held, strict=True)),
        }
        previous.update(key="k" * 64, signature_scheme="hmac-sha256")
        launcher = SubprocessKernelLauncher(IPYKERNEL)
        with reusing_connection(previous):
            path, info = launcher.make_connection_file()
        try:
            assert not set(_ports(info)) & set(held)
            assert info["key"] == "k" * 64
        finally:
            os.unlink(path)
            connection.release_ports(_ports(info))
    finally:
        connection.release_ports(held)


async def test_ipc_relaunch_keeps_its_socket_paths(jupyter_env: Any, reaper: list) -> None:
    launcher = SubprocessIPCKernelLauncher(IPYKERNEL, kernel_id="ipc-reused")
    old_info, old = await launcher.launch()
    reaper.append(old)
    assert channel_request(old_info, "kernel_info_request")["status"] == "ok"
    folder = os.path.dirname(old_info["ip"])
    await _stop(old)
    assert not os.path.exists(folder)  # cleanup removed the private directory
    with reusing_connection(old_info):
        new_info, new = await launcher.launch()
    reaper.append(new)
    for name in KEPT:
        assert new_info[name] == old_info[name], name
    assert os.stat(folder).st_mode & 0o777 == 0o700
    assert channel_request(old_info, "kernel_info_request")["status"] == "ok"
    await _stop(new)
    assert not os.path.exists(folder)


async def test_restarter_keeps_the_connection_so_an_open_client_goes_on(
    jupyter_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client made before the kernel died runs code on the restarted kernel without
    reconnecting."""
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "pyimport")
    kf = KernelFinder.from_entrypoints()
    info, km = await kf.launch("pyimport/kernel")
    restarter = AsyncKernelRestarter(km, "pyimport/kernel", kf, time_to_dead=0.5)
    restarted: list[dict[str, Any]] = []
    restarter.add_callback(restarted.append, "restarted")
    restarter.start()
    kc = KernelClient(info)
    managers = [km]
    try:
        await kc.wait_for_ready(timeout=TIMEOUT)
        pid = (await kc.execute("import os; os.getpid()")).content["status"]
        assert pid == "ok"
        os.kill(km.pid, signal.SIGKILL)
        for _ in range(600):
            if restarted:
                break
            await asyncio.sleep(0.05)
        assert restarted, "the restarter did not restart the kernel"
        managers.append(restarted[0]["manager"])
        new_info = restarted[0]["connection_info"]
        for name in KEPT:
            assert new_info[name] == info[name], name
        # The same client, never reconnected, runs code on the new kernel.
        reply = None
        for _ in range(12):
            try:
                reply = await asyncio.wait_for(kc.execute("6 * 7"), 5)
                break
            except TimeoutError:
                reply = None
        assert reply is not None and reply.content["status"] == "ok", reply
        restarter.stop()
    finally:
        restarter.stop()
        kc.close()
        for m in managers:
            await _stop(m)
