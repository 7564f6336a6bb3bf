"""The kernel-mgmt provisioner under jupyter_client's KernelManager, with real kernels."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager, KernelManager
from traitlets.config import Config

from kernel_mgmt_jupyter import KernelFinderSpecManager, KernelMgmtProvisioner

from .conftest import World, execute, ipykernel_spec, pid_gone, write_spec

TIMEOUT = 60


class Started:
    """A kernel started by an AsyncKernelManager, and its client."""

    def __init__(self, km: AsyncKernelManager) -> None:
        self.km = km
        self.client: Any = None

    @property
    def provisioner(self) -> KernelMgmtProvisioner:
        assert isinstance(self.km.provisioner, KernelMgmtProvisioner)
        return self.km.provisioner

    @property
    def pid(self) -> int:
        return self.provisioner.manager.pid

    async def connect(self) -> Any:
        if self.client is not None:
            self.client.stop_channels()
        self.client = self.km.client()
        self.client.start_channels()
        await self.client.wait_for_ready(timeout=TIMEOUT)
        return self.client

    async def run(self, code: str) -> tuple[dict[str, Any], str]:
        return await execute(self.client, code, TIMEOUT)


@pytest.fixture
async def start(world: World) -> AsyncIterator[Any]:
    """``await start(name, **start_kernel_kwargs)``; every kernel is shut down afterwards."""
    started: list[Started] = []

    async def _start(name: str, config: Config | None = None, **kwargs: Any) -> Started:
        km = AsyncKernelManager(
            kernel_name=name,
            kernel_spec_manager=KernelFinderSpecManager(),
            config=config or Config(),
        )
        s = Started(km)
        started.append(s)
        await km.start_kernel(cwd=str(world.tmp), **kwargs)
        await s.connect()
        return s

    yield _start
    for s in started:
        if s.client is not None:
            s.client.stop_channels()
        if s.km.has_kernel:
            await s.km.shutdown_kernel(now=True)


async def test_start_execute_shutdown_leaves_nothing(world: World, start: Any) -> None:
    s = await start("python3")
    assert s.km.kernel_spec.metadata["kernel_provisioner"]["provisioner_name"] == "kernel-mgmt"
    manager = s.provisioner.manager
    # jupyter's kernel id is ours, and names the connection file, which jupyter_client uses.
    assert manager.kernel_id == s.km.kernel_id
    assert world.connection_files() == [f"kernel-{s.km.kernel_id}.json"]
    assert s.km.connection_file == manager.connection_file
    reply, out = await s.run("import os, sys; print(os.getcwd()); print(sys.executable)")
    assert reply["status"] == "ok"
    cwd, exe = out.split()
    assert os.path.samefile(cwd, world.tmp)
    assert os.path.samefile(exe, sys.executable)
    pid = s.pid
    s.client.stop_channels()
    s.client = None
    await s.km.shutdown_kernel()
    assert pid_gone(pid)
    assert not s.km.has_kernel
    assert world.connection_files() == []


async def test_conda_kernel_runs_in_its_env_under_both_names(
    world: World, with_conda: Path, start: Any
) -> None:
    for name in ("conda__ml-python3", "conda-env-ml-py"):
        s = await start(name)
        reply, out = await s.run(
            "import sys, os; print(sys.prefix); print(os.environ['CONDA_PREFIX'])"
        )
        assert reply["status"] == "ok"
        prefix, conda_prefix = out.split()
        assert os.path.samefile(prefix, with_conda), name
        assert conda_prefix == str(with_conda)
        assert s.provisioner.type_id == "conda/ml-python3"
        assert world.connection_files() == [f"kernel-{s.km.kernel_id}.json"]
        await s.km.shutdown_kernel()
        s.client.stop_channels()
        s.client = None
    assert world.connection_files() == []


async def _interrupted_sleep(s: Started) -> dict[str, Any]:
    # stop_on_error=False: else ipykernel aborts the requests that follow the error for a moment.
    msg_id = s.client.execute("import time; time.sleep(30)", stop_on_error=False)
    # Wait until the kernel is busy on it before interrupting.
    while True:
        msg = await s.client.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_input":
            break
    await asyncio.sleep(0.3)
    await s.km.interrupt_kernel()
    while True:
        reply = await s.client.get_shell_msg(timeout=TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


async def test_interrupt_in_signal_mode(world: World, start: Any, monkeypatch: Any) -> None:
    s = await start("python3")
    calls: list[int] = []
    original = s.provisioner.send_signal

    async def spy(signum: int) -> None:
        calls.append(signum)
        await original(signum)

    monkeypatch.setattr(s.provisioner, "send_signal", spy)
    content = await _interrupted_sleep(s)
    assert content["status"] == "error" and content["ename"] == "KeyboardInterrupt"
    assert calls == [signal.SIGINT]
    assert await s.km.is_alive()
    # An expression's execute_result: the interrupted cell's stdout machinery is ipykernel's.
    reply, out = await s.run("'still ' + 'here'")
    assert reply["status"] == "ok"
    assert out == "'still here'\n"


async def test_interrupt_in_message_mode(world: World, start: Any, monkeypatch: Any) -> None:
    write_spec(world.kernels, "msgk", ipykernel_spec("Message mode", interrupt_mode="message"))
    s = await start("msgk")
    assert s.km.kernel_spec.interrupt_mode == "message"
    assert s.provisioner.manager.interrupt_mode == "message"
    signals: list[int] = []
    original = s.provisioner.send_signal

    async def spy(signum: int) -> None:
        signals.append(signum)
        await original(signum)

    monkeypatch.setattr(s.provisioner, "send_signal", spy)
    content = await _interrupted_sleep(s)
    # jupyter_client's KernelManager sent interrupt_request on the control channel: no signal.
    assert content["status"] == "error" and content["ename"] == "KeyboardInterrupt"
    assert signals == []
    reply, _ = await s.run("1")
    assert reply["status"] == "ok"


async def test_restart_is_a_new_launch_under_the_same_id(world: World, start: Any) -> None:
    s = await start("python3")
    kernel_id, old_pid = s.km.kernel_id, s.pid
    await s.run("x = 42")
    await s.km.restart_kernel()
    assert s.km.kernel_id == kernel_id
    assert s.provisioner.manager.kernel_id == kernel_id
    assert pid_gone(old_pid) and s.pid != old_pid
    assert world.connection_files() == [f"kernel-{kernel_id}.json"]
    await s.connect()  # the KernelManager holds the new connection info
    _, out = await s.run("print('x' in globals())")
    assert out == "False\n"


@pytest.mark.parametrize("name", ["python3", "conda-env-ml-py"])
def test_a_client_made_before_restart_kernel_keeps_working(
    world: World, with_conda: Path, name: str
) -> None:
    """As with jupyter_client's local provisioner: a restart keeps the ports and the key, so
    a BlockingKernelClient made before ``restart_kernel()`` runs code on the new kernel."""
    km = KernelManager(kernel_name=name, kernel_spec_manager=KernelFinderSpecManager())
    km.start_kernel(cwd=str(world.tmp))
    client = km.blocking_client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=TIMEOUT)
        before = km.get_connection_info()
        old_pid = km.provisioner.manager.pid
        assert client.execute_interactive("x = 42", timeout=TIMEOUT)["content"]["status"] == "ok"
        km.restart_kernel()
        assert pid_gone(old_pid) and km.provisioner.manager.pid != old_pid
        after = km.get_connection_info()
        for key in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port", "key"):
            assert after[key] == before[key], key
        assert world.connection_files() == [f"kernel-{km.kernel_id}.json"]
        # The same client, channels never restarted: a fresh kernel answers.
        client.wait_for_ready(timeout=TIMEOUT)
        out: list[str] = []
        reply = client.execute_interactive(
            "print('x' in globals())",
            timeout=TIMEOUT,
            output_hook=lambda m: out.append(m["content"].get("text", "")),
        )
        assert reply["content"]["status"] == "ok"
        assert "".join(out) == "False\n"
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
    assert world.connection_files() == []


async def test_sync_kernel_manager_works_too(world: World) -> None:
    km = KernelManager(kernel_name="python3", kernel_spec_manager=KernelFinderSpecManager())
    km.start_kernel()
    try:
        client = km.blocking_client()
        client.start_channels()
        client.wait_for_ready(timeout=TIMEOUT)
        reply = client.execute_interactive("1 + 1", timeout=TIMEOUT)
        assert reply["content"]["status"] == "ok"
        assert km.is_alive()
        client.stop_channels()
    finally:
        pid = km.provisioner.manager.pid
        km.shutdown_kernel(now=False)
    assert pid_gone(pid)
    assert world.connection_files() == []


GREETER_ARGV = [*ipykernel_spec()["argv"], "--IPKernelApp.exec_lines=GREETING = '{greeting}'"]
GREETER_SCHEMA = {
    "type": "object",
    "properties": {"greeting": {"type": "string", "pattern": "^[a-z]+$", "default": "hello"}},
    "additionalProperties": False,
}


@pytest.fixture
def greeter(world: World) -> str:
    spec = ipykernel_spec("Greeter", metadata={"launch_parameter_schema": GREETER_SCHEMA})
    spec["argv"] = GREETER_ARGV
    write_spec(world.kernels, "greeter", spec)
    return "greeter"


async def _greeting(s: Started) -> str:
    _, out = await s.run("print(GREETING)")
    return out.strip()


async def test_launch_params_defaults_config_env_and_keyword(
    world: World, greeter: str, start: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await _greeting(await start(greeter)) == "hello"  # the schema's default
    config = Config()
    config.KernelMgmtProvisioner.launch_params = {"spec/greeter": {"greeting": "hola"}}
    assert await _greeting(await start(greeter, config=config)) == "hola"
    env = {**os.environ, "KERNEL_GREETING": "bonjour"}  # as Enterprise Gateway passes them
    s = await start(greeter, config=config, env=env)
    assert await _greeting(s) == "bonjour"
    s = await start(greeter, config=config, env=env, launch_params={"greeting": "ciao"})
    assert await _greeting(s) == "ciao"
    await s.km.restart_kernel()  # jupyter_client keeps the launch arguments
    await s.connect()
    assert await _greeting(s) == "ciao"


async def test_launch_params_from_a_kernelspec_written_for_the_provisioner(
    world: World, greeter: str, start: Any
) -> None:
    stanza = {
        "provisioner_name": "kernel-mgmt",
        "config": {"type_id": "spec/greeter", "params": {"greeting": "salut"}},
    }
    spec = ipykernel_spec("Greeter in French", metadata={"kernel_provisioner": stanza})
    write_spec(world.kernels, "greeter-fr", spec)
    s = await start("greeter-fr")
    assert s.provisioner.type_id == "spec/greeter"  # its own config, kept
    assert await _greeting(s) == "salut"


async def test_bad_launch_params_fail_before_anything_starts(
    world: World, greeter: str, start: Any
) -> None:
    from kernel_mgmt.discovery import InvalidLaunchParams

    with pytest.raises(InvalidLaunchParams, match="greeting"):
        await start(greeter, env={**os.environ, "KERNEL_GREETING": "Not Valid!"})
    assert world.connection_files() == []


async def test_starting_does_not_block_the_event_loop(world: World, start: Any) -> None:
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.ensure_future(ticker())
    await start("python3")  # lists the spec provider in a thread, then starts the kernel
    done.set()
    await task
    assert ticks > 1


async def test_server_restarter_brings_a_dead_kernel_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    # MultiKernelManager's default connection_dir is "" (the cwd): jupyter_client must still
    # use the provider's connection file, not write a second one here.
    monkeypatch.chdir(world.tmp)
    mkm = AsyncMappingKernelManager(
        kernel_spec_manager=KernelFinderSpecManager(), root_dir=str(world.tmp)
    )
    kernel_id = await mkm.start_kernel(kernel_name="python3")
    try:
        km = mkm.get_kernel(kernel_id)
        restarted = asyncio.Event()
        km.add_restart_callback(restarted.set, "restart")
        old_pid = km.provisioner.manager.pid
        os.kill(old_pid, signal.SIGKILL)
        await asyncio.wait_for(restarted.wait(), TIMEOUT)  # fired as the restart begins
        for _ in range(TIMEOUT * 10):
            manager = km.provisioner.manager
            if manager is not None and manager.pid != old_pid and km.ready.done():
                break
            await asyncio.sleep(0.1)
        assert km.provisioner.manager.pid != old_pid
        assert km.kernel_id == kernel_id
        client = km.client()
        client.start_channels()
        await client.wait_for_ready(timeout=TIMEOUT)
        reply, _ = await execute(client, "1", TIMEOUT)
        assert reply["status"] == "ok"
        assert list(world.tmp.glob("kernel-*.json")) == []
        client.stop_channels()
        pid = km.provisioner.manager.pid
    finally:
        await mkm.shutdown_all()
    assert pid_gone(pid)
    assert world.connection_files() == []


async def test_server_culls_an_idle_kernel(world: World) -> None:
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    mkm = AsyncMappingKernelManager(
        kernel_spec_manager=KernelFinderSpecManager(),
        root_dir=str(world.tmp),
        connection_dir=str(world.runtime),
        cull_idle_timeout=1,
        cull_interval=1,
    )
    kernel_id = await mkm.start_kernel(kernel_name="python3")
    pid = mkm.get_kernel(kernel_id).provisioner.manager.pid
    try:
        for _ in range(TIMEOUT * 10):
            if kernel_id not in mkm:
                break
            await asyncio.sleep(0.1)
        assert kernel_id not in mkm
        for _ in range(TIMEOUT * 10):
            if pid_gone(pid):
                break
            await asyncio.sleep(0.1)
        assert pid_gone(pid)
        assert world.connection_files() == []
    finally:
        await mkm.shutdown_all()


async def test_a_wrapper_kernel_installed_as_a_kernelspec(world: World, start: Any) -> None:
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "wrapper_kernel.examples.echo", "install", "--user"],
        env=world.env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert (world.data / "kernels" / "echo" / "kernel.json").is_file()
    s = await start("echo")
    assert s.provisioner.type_id == "spec/echo"
    reply, out = await s.run("polly wants a cracker")
    assert reply["status"] == "ok"
    assert out == "polly wants a cracker"
