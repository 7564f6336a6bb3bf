"""The gateway bridge as a CurveZMQ server, against the real gateways of conftest.py.

The bridge is a kernel endpoint of ours, so it follows the same policy as our launchers
(``transport_encryption``: config, ``$KERNEL_MGMT_TRANSPORT_ENCRYPTION``, the launch; default
``auto``, and gateway types declare support): its connection info carries
``curve_publickey``/``curve_secretkey`` and all five sockets are CURVE servers. Checked with
our asyncio and blocking clients and jupyter_client's BlockingKernelClient; a client without
the keys or with other keys gets nothing; a recording TCP proxy on the bridge's loopback
ports sees neither code nor output with encryption on, and both with it off.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from kernel_mgmt.connection import PORT_NAMES
from kernel_mgmt.curve import ENV_POLICY, TransportEncryptionError
from kernel_mgmt.discovery import KernelFinder

from ..integration.curve_support import (
    CLIENTS,
    RecordingProxy,
    assert_capture,
    code_for,
    gets_nothing,
    other_keys,
    round_trip,
    without_keys,
)
from .conftest import Gateway

BIN = Path(sys.executable).parent
TYPE = "gateway/python3"


@asynccontextmanager
async def bridged(
    config: dict[str, Any] | None = None, **launch: Any
) -> AsyncIterator[tuple[dict[str, Any], Any]]:
    """A gateway kernel launched by a finder with *config*; deleted and cleaned up after."""
    finder = KernelFinder.from_entrypoints(config or {})
    info, km = await finder.launch(TYPE, **launch)
    try:
        yield info, km
    finally:
        await km.kill()
        await km.cleanup()


def test_gateway_types_declare_curve_and_list_json_says_encrypted(kg: Gateway) -> None:
    """A gateway type declares support for its bridge, so ``kernel-mgmt list --json`` shows
    it encrypted like our other kernels (and not, when the policy says disabled)."""
    finder = KernelFinder.from_entrypoints({})
    attrs = dict(finder.find_kernels())[TYPE]
    assert attrs["metadata"]["supported_encryption"] == ["curve"]
    assert attrs["metadata"]["launch_parameter_schema"]  # the remote metadata is kept

    def listed(**env: str) -> dict[str, Any]:
        out = subprocess.run(
            [str(BIN / "kernel-mgmt"), "list", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **env},
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["kernels"][TYPE]["encryption"]

    assert listed() == {"policy": "auto", "supported": True, "encrypted": True}
    assert listed(**{ENV_POLICY: "disabled"}) == {
        "policy": "disabled",
        "supported": True,
        "encrypted": False,
    }
    # 'required' can be met: no problem reported.
    assert listed(**{ENV_POLICY: "required"}) == {
        "policy": "required",
        "supported": True,
        "encrypted": True,
    }


def test_remote_kernelspec_encryption_options_are_kept_aside() -> None:
    """A remote kernelspec's own supported_encryption/transport_encryption concern the
    gateway's link to its kernel, not our loopback sockets: kept under gateway.*."""
    from kernel_mgmt_provider_gateway._config import parse_config
    from kernel_mgmt_provider_gateway._discover import kernel_records

    config = parse_config({"url": "http://127.0.0.1:1"}, environ={})
    body = {
        "kernelspecs": {
            "old": {
                "name": "old",
                "spec": {
                    "display_name": "Old",
                    "language": "python",
                    "metadata": {"transport_encryption": "disabled", "debugger": True},
                },
            }
        }
    }
    ((name, attrs),) = kernel_records(config, body)
    assert name == "old"
    assert attrs["metadata"] == {"debugger": True, "supported_encryption": ["curve"]}
    assert attrs["gateway"]["remote_encryption"] == {"transport_encryption": "disabled"}


@pytest.mark.parametrize("client", CLIENTS)
async def test_round_trip_encrypted(kg: Gateway, client: str) -> None:
    code, expected = code_for("ipykernel", f"curve-{client}")
    async with bridged() as (info, km):
        assert info["curve_publickey"] and info["curve_secretkey"]
        on_disk = json.loads(Path(km.connection_file).read_text())
        assert on_disk["curve_publickey"] == info["curve_publickey"]
        assert on_disk["curve_secretkey"] == info["curve_secretkey"]
        assert await round_trip(client, info, code) == ("ok", expected)


async def test_round_trip_encrypted_on_enterprise_gateway(gateway: Gateway) -> None:
    """The same bridge in front of both servers (kg and eg)."""
    code, expected = code_for("ipykernel", "curve-eg")
    async with bridged() as (info, _km):
        assert "curve_publickey" in info
        assert await round_trip("jupyter_client", info, code) == ("ok", expected)


@pytest.mark.parametrize("client", CLIENTS)
async def test_clients_without_the_keys_get_nothing(kg: Gateway, client: str) -> None:
    """No keys (plain text) or another key pair: nothing arrives, iopub included, and the
    client times out cleanly; the kernel is unharmed and still answers the right keys."""
    code, expected = code_for("ipykernel", "secret-work")
    async with bridged() as (info, _km):
        assert await gets_nothing(client, without_keys(info), code) == []
        assert await gets_nothing(client, other_keys(info), code) == []
        assert await round_trip(client, info, code) == ("ok", expected)


async def test_heartbeat_over_curve(kg: Gateway) -> None:
    """The heartbeat is a CURVE server too: our clients' heartbeat keeps the kernel alive
    (it pings with the keys), a plain ping is never answered."""
    import zmq
    import zmq.asyncio

    from kernel_mgmt.client import KernelClient

    async with bridged() as (info, _km):
        kc = KernelClient(info, use_heartbeat=True)  # no manager: the heartbeat decides
        try:
            await kc.wait_for_ready(timeout=60)
            assert (await kc.execute_interactive("1", timeout=60)).content["status"] == "ok"
            await asyncio.sleep(3 * kc.hb_misses * kc.time_to_dead)  # several missed ones' time
            assert await kc.is_alive()
        finally:
            await kc.close()
        ctx = zmq.asyncio.Context()
        sock = ctx.socket(zmq.REQ)
        sock.linger = 0
        try:
            sock.connect(f"tcp://127.0.0.1:{info['hb_port']}")
            await sock.send(b"ping")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(sock.recv(), 1.5)
        finally:
            sock.close()
            ctx.term()


@pytest.mark.parametrize("policy", ["auto", "disabled"])
async def test_code_and_output_hidden_on_the_bridge_ports(kg: Gateway, policy: str) -> None:
    """A raw TCP proxy between our client and the bridge records every byte on the bridge's
    loopback ports: with encryption neither the code nor its output shows; with it disabled
    (the finder's config) both do, so the capture really sees the traffic."""
    marker = "wiretap-" + "b7e21d"
    code, expected = code_for("ipykernel", marker)
    async with bridged({"transport_encryption": policy}) as (info, _km):
        assert ("curve_publickey" in info) == (policy == "auto")
        proxy = RecordingProxy(info)
        via_proxy = await proxy.start()
        try:
            status, out = await round_trip("asyncio", via_proxy, code)
        finally:
            await proxy.close()
    assert (status, out) == ("ok", expected)
    assert_capture(proxy, info, code, expected, policy)


@pytest.mark.parametrize("source", ["config", "env", "launch"])
async def test_policy_disabled_from_each_source(
    kg: Gateway, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``disabled`` from the config, the environment or the launch: a plain bridge that
    plain clients (jupyter_client without keys) reach."""
    config: dict[str, Any] = {}
    launch: dict[str, Any] = {}
    if source == "config":
        config["transport_encryption"] = "disabled"
    elif source == "env":
        monkeypatch.setenv(ENV_POLICY, "Disabled")  # caseless, as jupyter_client's trait
    else:
        config["transport_encryption"] = "required"  # the launch's own policy wins
        launch["transport_encryption"] = "disabled"
    async with bridged(config, **launch) as (info, km):
        assert not any(k.startswith("curve_") for k in info)
        assert "curve_publickey" not in json.loads(Path(km.connection_file).read_text())
        code, expected = code_for("ipykernel", "plain")
        assert await round_trip("jupyter_client", info, code) == ("ok", expected)


async def test_required_is_met(kg: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_POLICY, "required")
    async with bridged() as (info, _km):
        assert "curve_secretkey" in info
        assert await round_trip("blocking", info, "print(1)") == ("ok", "1\n")


async def test_bad_policy_fails_before_the_gateway_is_asked(
    kg: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad $KERNEL_MGMT_TRANSPORT_ENCRYPTION: a clear error naming the variable, and no
    kernel started on the gateway (the fixture also checks no bridge thread is left)."""
    monkeypatch.setenv(ENV_POLICY, "sometimes")
    finder = KernelFinder.from_entrypoints({})
    with pytest.raises(TransportEncryptionError) as err:
        await finder.launch(TYPE)
    assert ENV_POLICY in str(err.value) and "sometimes" in str(err.value)
    assert kg.kernels() == []


def test_cli_run_json_says_curve(kg: Gateway) -> None:
    out = subprocess.run(
        [str(BIN / "kernel-mgmt"), "run", TYPE, "--json", "-c", "print(6 * 7)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout.splitlines()[0])
    assert first["msg_type"] == "kernel_started"
    assert (first["kernel_type"], first["transport"], first["ip"], first["encryption"]) == (
        TYPE,
        "tcp",
        "127.0.0.1",
        "curve",
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()[1:]]
    assert any(m["content"].get("text") == "42\n" for m in lines if m["msg_type"] == "stream")


def test_every_bridge_port_is_a_curve_server(kg: Gateway) -> None:
    """Each of the five ports refuses a plain (NULL mechanism) peer: the handshake fails
    with a mechanism mismatch, seen by a socket monitor."""
    import zmq
    from zmq.utils.monitor import recv_monitor_message

    from kernel_mgmt import run_kernel_blocking

    with run_kernel_blocking(TYPE) as kc:
        info = dict(kc.connection_info)
        ctx = zmq.Context()
        try:
            for name in PORT_NAMES:
                sock = ctx.socket(zmq.DEALER)
                sock.linger = 0
                monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
                monitor.rcvtimeo = 30000
                sock.connect(f"tcp://127.0.0.1:{info[name]}")
                try:
                    event = recv_monitor_message(monitor)
                    assert event["value"] == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH, name
                finally:
                    sock.disable_monitor()
                    monitor.close(linger=0)
                    sock.close(linger=0)
        finally:
            ctx.term()
        assert kc.execute_interactive("1", timeout=60).content["status"] == "ok"


@pytest.mark.parametrize("required", [False, True])
async def test_through_jupyter_clients_kernel_manager(kg: Gateway, required: bool) -> None:
    """jupyter_client's AsyncKernelManager starts a gateway kernel through the Jupyter
    bridge's provisioner: the bridge encrypts (our default, and jupyter's 'required'), and
    jupyter_client's own client reaches it with the keys it loaded."""
    from jupyter_client.manager import AsyncKernelManager

    import kernel_mgmt_jupyter.finders as bridge_finders
    from kernel_mgmt_jupyter import KernelFinderSpecManager

    bridge_finders.reset_shared()  # finders made for this test's gateway
    km = AsyncKernelManager(
        kernel_name="gateway__python3", kernel_spec_manager=KernelFinderSpecManager()
    )
    kwargs = {"transport_encryption": "required"} if required else {}
    await km.start_kernel(**kwargs)
    try:
        assert km.provisioner.type_id == TYPE
        assert km.curve_publickey is not None and km.curve_secretkey is not None
        path = km.connection_file
        assert path == km.provisioner.manager.connection_file
        assert os.stat(path).st_mode & 0o777 == 0o600
        client = km.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=60)
            out: list[str] = []
            reply = await client.execute_interactive(
                "print(6 * 7)",
                timeout=60,
                output_hook=lambda m: out.append(m["content"].get("text", "")),
            )
        finally:
            client.stop_channels()
        assert reply["content"]["status"] == "ok" and "".join(out) == "42\n"
    finally:
        await km.shutdown_kernel(now=True)
        bridge_finders.reset_shared()
    assert not os.path.exists(path)
