"""Who gets CurveZMQ keys: ``transport_encryption`` from the config, the kernelspec and the
environment; kernels that do not declare support; what ``kernel-mgmt list/run --json`` say.

The kernels are real processes: the wrapper echo kernel behind a small shim
(``curve_kernels/shim_kernel.py``) that can also behave like a kernel predating CurveZMQ,
which ignores the keys and binds in plain text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kernel_mgmt.client import KernelClient
from kernel_mgmt.config import ConfigError, validate_config
from kernel_mgmt.curve import ENV_POLICY, TransportEncryptionError
from kernel_mgmt.discovery import KernelFinder
from kernel_mgmt.subproc.launcher import SubprocessIPCKernelLauncher

from .curve_support import (
    curve_env,  # noqa: F401  (fixture, used below)
    other_keys,
    round_trip,
)

pytestmark = pytest.mark.usefixtures("curve_env")

SHIM = Path(__file__).parent / "curve_kernels" / "shim_kernel.py"
DECLARES = {"supported_encryption": ["curve"]}


def write_spec(kernels: Path, name: str, metadata: dict[str, Any], *shim_args: str) -> None:
    d = kernels / name
    d.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, str(SHIM), "{connection_file}", *shim_args],
        "display_name": name,
        "language": "text",
        "metadata": metadata,
    }
    (d / "kernel.json").write_text(json.dumps(spec))


def spec_finder(kernels: Path, config: dict[str, Any] | None = None) -> KernelFinder:
    from kernel_mgmt_provider_spec import KernelSpecProvider

    return KernelFinder({"spec": KernelSpecProvider([str(kernels)])}, config or {})


async def launch(finder: KernelFinder, type_id: str) -> tuple[dict[str, Any], Any]:
    info, km = await finder.launch(type_id)
    return info, km


async def stop(km: Any) -> None:
    await km.kill()
    await km.cleanup()


# -- kernels that do not declare support --------------------------------------------------


async def test_auto_launches_an_undeclared_kernel_without_keys(tmp_path: Path) -> None:
    """A kernel predating CurveZMQ would ignore keys: under ``auto`` it gets none, and every
    client reaches it in plain text."""
    kernels = tmp_path / "kernels"
    write_spec(kernels, "old", {}, f"ignore-keys={tmp_path / 'plain.json'}")
    info, km = await launch(spec_finder(kernels), "spec/old")
    try:
        assert not any(k.startswith("curve_") for k in info)
        assert await round_trip("asyncio", info, "plain") == ("ok", "plain")
    finally:
        await stop(km)


async def test_required_refuses_an_undeclared_kernel_before_starting_it(tmp_path: Path) -> None:
    kernels = tmp_path / "kernels"
    started = tmp_path / "started"
    write_spec(kernels, "old", {}, f"mark={started}")
    finder = spec_finder(kernels, {"transport_encryption": "required"})
    with pytest.raises(TransportEncryptionError) as err:
        await finder.launch("spec/old")
    message = str(err.value)
    assert "old" in message and "supported_encryption" in message and "'auto'" in message
    # Nothing started, nothing written.
    assert not started.exists()
    runtime = Path(os.environ["JUPYTER_RUNTIME_DIR"])
    assert not runtime.exists() or list(runtime.iterdir()) == []


@pytest.mark.parametrize("client", ["asyncio", "blocking"])
async def test_a_kernel_ignoring_its_keys_fails_fast(tmp_path: Path, client: str) -> None:
    """Declared, but the kernel ignores the keys and binds in plain text: the client's
    wait_for_ready sees the handshake's mechanism mismatch and fails at once with a clear
    error (not after its timeout), naming the kernel and what to do."""
    import time

    from kernel_mgmt.client import BlockingKernelClient

    kernels = tmp_path / "kernels"
    write_spec(kernels, "liar", DECLARES, f"ignore-keys={tmp_path / 'plain.json'}")
    info, km = await launch(spec_finder(kernels), "spec/liar")
    try:
        assert "curve_publickey" in info
        t0 = time.monotonic()
        with pytest.raises(TransportEncryptionError) as err:
            if client == "asyncio":
                kc = KernelClient(info, km)
                try:
                    await kc.wait_for_ready(timeout=60)
                finally:
                    await kc.close()
            else:
                with BlockingKernelClient(info, km) as bkc:
                    bkc.wait_for_ready(timeout=60)
        assert time.monotonic() - t0 < 30  # well before the timeout
        message = str(err.value)
        assert "spec/liar" in message and "supported_encryption" in message
        assert "'disabled'" in message
    finally:
        await stop(km)


async def test_timeout_hint_for_an_encrypted_kernel_that_never_answers(tmp_path: Path) -> None:
    """Nothing listens at all: the ready timeout of a CURVE client mentions the keys."""
    import zmq

    from kernel_mgmt.connection import PORT_NAMES, allocate_ports, release_ports

    public, secret = zmq.curve_keypair()
    info: dict[str, Any] = dict(zip(PORT_NAMES, allocate_ports(n=5), strict=True))
    info.update(
        ip="127.0.0.1", key="k", curve_publickey=public.decode(), curve_secretkey=secret.decode()
    )
    kc = KernelClient(info, use_heartbeat=False)
    try:
        with pytest.raises(TimeoutError, match=r"CurveZMQ keys.*'disabled'"):
            await kc.wait_for_ready(timeout=0.5)
    finally:
        await kc.close()
        release_ports([info[name] for name in PORT_NAMES])


# -- where the policy comes from -----------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "own", "env", "keys"),
    [
        (None, None, None, True),  # default: auto, declared → keys
        ({"transport_encryption": "disabled"}, None, None, False),
        ({"transport_encryption": "DISABLED"}, None, None, False),  # caseless, as jupyter_client
        (None, "disabled", None, False),  # the kernelspec's own option
        ({"transport_encryption": "disabled"}, "required", None, True),  # kernelspec wins
        (None, None, "disabled", False),  # $KERNEL_MGMT_TRANSPORT_ENCRYPTION
        ({"transport_encryption": "auto"}, None, "disabled", True),  # config beats the env
    ],
)
async def test_policy_sources(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    config: dict[str, Any] | None,
    own: str | None,
    env: str | None,
    keys: bool,
) -> None:
    if env is not None:
        monkeypatch.setenv(ENV_POLICY, env)
    kernels = tmp_path / "kernels"
    metadata = dict(DECLARES, **({"transport_encryption": own} if own else {}))
    write_spec(kernels, "echo", metadata)
    if config and config["transport_encryption"].islower():
        validate_config(config)  # what a config file may say
    info, km = await launch(spec_finder(kernels, config), "spec/echo")
    try:
        assert ("curve_publickey" in info) == keys
        assert ("curve_secretkey" in info) == keys
        assert await round_trip("blocking", info, "x") == ("ok", "x")
    finally:
        await stop(km)


async def test_bad_policy_values_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="transport_encryption"):
        validate_config({"transport_encryption": "sometimes"})
    with pytest.raises(ConfigError, match=r"transport_encryption.*disabled, auto, required"):
        KernelFinder({}, {"transport_encryption": "on"})
    kernels = tmp_path / "kernels"
    write_spec(kernels, "odd", {**DECLARES, "transport_encryption": "yes"})
    with pytest.raises(TransportEncryptionError) as err:
        await spec_finder(kernels).launch("spec/odd")
    assert str(err.value).startswith(f"kernel odd (kernelspec in {kernels / 'odd'}): ")
    assert "metadata.transport_encryption must be one of disabled, auto, required" in str(err.value)


async def test_ipc_gets_keys_only_when_required(tmp_path: Path) -> None:
    """auto leaves IPC kernels (private 0700 socket folder) alone; required encrypts them too,
    as jupyter_client does; a client with other keys gets nothing over ipc either."""
    from .curve_support import gets_nothing

    argv = [sys.executable, "-m", "wrapper_kernel.examples.echo", "-f", "{connection_file}"]
    for policy, keys in (("auto", False), ("required", True)):
        launcher = SubprocessIPCKernelLauncher(
            argv, kernel_metadata=DECLARES, transport_encryption=policy
        )
        info, km = await launcher.launch()
        try:
            assert info["transport"] == "ipc"
            assert ("curve_publickey" in info) == keys
            assert await round_trip("asyncio", info, "over ipc") == ("ok", "over ipc")
            if keys:
                assert await gets_nothing("asyncio", other_keys(info), "x") == []
        finally:
            await stop(km)


# -- the command line ----------------------------------------------------------------------


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kernel_mgmt", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Only the spec provider, a JUPYTER_PATH with a declaring and an undeclared kernelspec."""
    kernels = tmp_path / "path" / "kernels"
    write_spec(kernels, "echo", DECLARES, f"copy={tmp_path / 'echo-connection.json'}")
    write_spec(kernels, "old", {}, f"copy={tmp_path / 'old-connection.json'}")
    env = dict(os.environ)
    env.update(KERNEL_MGMT_PROVIDERS="spec", KERNEL_MGMT_CONFIG=str(tmp_path / "km.toml"))
    (tmp_path / "km.toml").write_text("")
    return env


def test_list_json_says_who_gets_encryption(tmp_path: Path, cli_env: dict[str, str]) -> None:
    p = cli(["list", "--json"], cli_env)
    assert p.returncode == 0, p.stderr
    kernels = json.loads(p.stdout)["kernels"]
    assert kernels["spec/echo"]["encryption"] == {
        "policy": "auto",
        "supported": True,
        "encrypted": True,
    }
    assert kernels["spec/old"]["encryption"] == {
        "policy": "auto",
        "supported": False,
        "encrypted": False,
    }
    (tmp_path / "km.toml").write_text('transport_encryption = "required"\n')
    kernels = json.loads(cli(["list", "--json"], cli_env).stdout)["kernels"]
    assert kernels["spec/echo"]["encryption"]["encrypted"] is True
    old = kernels["spec/old"]["encryption"]
    assert old["encrypted"] is False and "required" in old["problem"]


def test_run_json_says_whether_the_connection_is_encrypted(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    for name, encryption in (("echo", "curve"), ("old", None)):
        p = cli(["run", f"spec/{name}", "--json", "-c", "hello"], cli_env)
        assert p.returncode == 0, p.stderr
        first = json.loads(p.stdout.splitlines()[0])
        assert first["msg_type"] == "kernel_started"
        assert first["kernel_type"] == f"spec/{name}"
        assert (first["transport"], first["encryption"]) == ("tcp", encryption)
        used = json.loads((tmp_path / f"{name}-connection.json").read_text())
        assert ("curve_secretkey" in used) == (encryption == "curve")
        for secret in (used["key"], used.get("curve_secretkey")):
            if secret:
                assert secret not in p.stdout and secret not in p.stderr


def test_run_required_with_an_undeclared_kernel_exits_1(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    (tmp_path / "km.toml").write_text('transport_encryption = "required"\n')
    p = cli(["run", "spec/old", "-c", "hello"], cli_env)
    assert p.returncode == 1
    assert "spec/old" in p.stderr and "supported_encryption" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "old-connection.json").exists()  # never started


def test_run_with_a_kernel_ignoring_its_keys_exits_1(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    write_spec(
        tmp_path / "path" / "kernels", "liar", DECLARES, f"ignore-keys={tmp_path / 'p.json'}"
    )
    p = cli(["run", "spec/liar", "-c", "hello"], cli_env)
    assert p.returncode == 1
    assert "spec/liar" in p.stderr and "without CurveZMQ" in p.stderr
    assert "Traceback" not in p.stderr


async def test_concurrent_ready_waits_on_an_encrypted_kernel(tmp_path: Path) -> None:
    """Two wait_for_ready at once (one handshake monitor per socket) both succeed."""
    import asyncio

    kernels = tmp_path / "kernels"
    write_spec(kernels, "echo", DECLARES)
    info, km = await launch(spec_finder(kernels), "spec/echo")
    kc = KernelClient(info, km)
    try:
        replies = await asyncio.gather(kc.wait_for_ready(60), kc.wait_for_ready(60))
        assert [r.content["status"] for r in replies] == ["ok", "ok"]
        assert (await kc.wait_for_ready(60)).content["status"] == "ok"
    finally:
        await kc.close()
        await stop(km)
