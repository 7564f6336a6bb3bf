"""Launching real kernels from conda-style environments, activated, and managing them.

The kernel is ipykernel running on a real interpreter of a ``python -m venv`` environment
dressed as a conda environment (see ``real_env_root`` in conftest). Talking to it uses
jupyter_client's BlockingKernelClient, an independent peer.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

import kernel_mgmt_provider_conda as provider

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
TIMEOUT = 30

PROBE = """\
import json, os, sys
print(json.dumps({
    "prefix": sys.prefix,
    "executable": sys.executable,
    "pid": os.getpid(),
    "pgid": os.getpgid(0),
    "env": {k: os.environ.get(k) for k in (
        "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "CONDA_SHLVL", "CONDA_PROMPT_MODIFIER",
        "MYPKG_HOME", "SHARED", "PROJECT_MODE", "SCRIPTED", "SPEC_VAR")},
    "path": os.environ["PATH"].split(os.pathsep),
}))
"""


class Running:
    """A launched kernel plus a connected jupyter_client client."""

    def __init__(self, info: dict[str, Any], manager: Any) -> None:
        self.info = info
        self.manager = manager
        self.client = BlockingKernelClient()
        self.client.load_connection_info(info)
        # No heartbeat channel: under load its 1 s beat can misreport a busy kernel as dead.
        self.client.start_channels(hb=False)
        try:
            self.client.wait_for_ready(timeout=TIMEOUT)
        except BaseException:
            self.client.stop_channels()
            raise

    def run(self, code: str) -> tuple[dict[str, Any], str]:
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])

        reply = self.client.execute_interactive(code, output_hook=hook, timeout=TIMEOUT)
        return reply, "".join(out)

    def probe(self) -> dict[str, Any]:
        reply, out = self.run(PROBE)
        assert reply["content"]["status"] == "ok", reply["content"]
        return json.loads(out)

    def interrupt_sleep(self) -> dict[str, Any]:
        """Start a long sleep, interrupt it through the manager, return the execute_reply."""
        msg_id = self.client.execute("import time; print('sleeping', flush=True); time.sleep(60)")
        # Interrupt once the code runs (its output arrives): ipykernel ignores SIGINT between
        # requests, so an interrupt sent on execute_input alone can be lost.
        while True:
            msg = self.client.get_iopub_msg(timeout=TIMEOUT)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                break
        asyncio.run(self.manager.interrupt())
        while True:
            reply = self.client.get_shell_msg(timeout=TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def shutdown(self) -> None:
        self.client.shutdown()
        still_alive = asyncio.run(self.manager.wait(timeout=TIMEOUT))
        assert not still_alive
        assert self.manager.returncode == 0

    def close(self) -> None:
        self.client.stop_channels()
        asyncio.run(self.manager.kill())
        asyncio.run(self.manager.cleanup())


@pytest.fixture
def world(conda: Any, real_env_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jpath"))
    monkeypatch.setenv("MAMBA_ROOT_PREFIX", str(real_env_root))
    monkeypatch.setenv("PATH", f"/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin")
    return conda


@pytest.fixture
def kernels() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for k in started:
        k.close()


def start(name: str, started: list[Running], cwd: str | None = None) -> Running:
    info, manager = asyncio.run(provider.launch(name, cwd, None))
    try:
        running = Running(info, manager)
    except BaseException:
        asyncio.run(manager.kill())
        asyncio.run(manager.cleanup())
        raise
    started.append(running)
    return running


def test_kernel_runs_activated_in_its_env(
    world: Any, real_env_root: Path, kernels: list[Running], tmp_path: Path
) -> None:
    prefix = real_env_root / "envs" / "realenv"
    found = dict(provider.find_kernels())
    assert "realenv-python3" in found
    assert found["realenv-python3"]["argv"][0] == str(prefix / "bin" / "python")
    k = start("realenv-python3", kernels, cwd=str(tmp_path))
    seen = k.probe()
    assert seen["prefix"] == str(prefix)
    assert seen["env"]["CONDA_PREFIX"] == str(prefix)
    assert seen["env"]["CONDA_DEFAULT_ENV"] == "realenv"
    assert seen["env"]["CONDA_SHLVL"] == "1"
    assert seen["env"]["CONDA_PROMPT_MODIFIER"] == "(realenv) "
    assert seen["path"][0] == str(prefix / "bin")
    assert seen["path"][1:] == ["/usr/local/bin", "/usr/bin", "/bin"]
    assert seen["env"]["MYPKG_HOME"] == "from-package"  # etc/conda/env_vars.d
    assert seen["env"]["SHARED"] == "state"  # conda-meta/state wins over packages
    assert seen["env"]["PROJECT_MODE"] == "dev"
    assert seen["pid"] == k.manager.pid  # our direct child: no wrapper shell
    assert seen["pgid"] == seen["pid"]  # leading its own process group (signals reach it)
    assert k.info["kernel_name"] == "conda/realenv-python3"


def test_interrupt_and_shutdown(world: Any, kernels: list[Running]) -> None:
    k = start("realenv-python3", kernels)
    reply = k.interrupt_sleep()
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    # Still usable after the interrupt. ipykernel aborts requests that reach it right after
    # an error (stop_on_error), so a request may come back "aborted" before one runs.
    for _ in range(20):
        reply, out = k.run("print(6 * 7)")
        if reply["content"]["status"] != "aborted":
            break
    assert reply["content"]["status"] == "ok"
    assert out.strip() == "42"
    k.shutdown()


def test_activate_d_scripts_run_through_an_exec_shell(
    world: Any, real_env_root: Path, kernels: list[Running]
) -> None:
    """An env with activate.d scripts: the shell sources them, then becomes the kernel."""
    real_python = str(real_env_root / "envs" / "realenv" / "bin" / "python")
    body = world.spec("Scripted")
    body["argv"][0] = real_python
    body["env"] = {"SPEC_VAR": "from-kernelspec"}
    prefix = world.make_env(
        world.tmp / "scripted",
        kernels={"python3": body},
        activate={"set.sh": 'export SCRIPTED="yes:$CONDA_DEFAULT_ENV"\n'},
    )
    world.environments_txt(prefix)
    k = start("scripted-python3", kernels)
    seen = k.probe()
    # Not in an envs dir: conda names it by its path.
    assert seen["env"]["SCRIPTED"] == f"yes:{prefix}"
    assert seen["env"]["CONDA_PREFIX"] == str(prefix)
    assert seen["env"]["SPEC_VAR"] == "from-kernelspec"
    assert seen["path"][0] == str(prefix / "bin")
    assert seen["pid"] == k.manager.pid  # the shell exec'd the kernel: same process
    assert seen["pgid"] == seen["pid"]  # ... and the same process group
    reply = k.interrupt_sleep()
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    k.shutdown()


def test_launch_through_the_finder(world: Any, kernels: list[Running]) -> None:
    from kernel_mgmt.discovery import KernelFinder

    finder = KernelFinder([provider])
    assert "conda/realenv-python3" in dict(finder.find_kernels())
    info, manager = asyncio.run(finder.launch("conda/realenv-python3"))
    running = Running.__new__(Running)
    running.info, running.manager = info, manager
    running.client = BlockingKernelClient()
    running.client.load_connection_info(info)
    running.client.start_channels(hb=False)
    kernels.append(running)
    running.client.wait_for_ready(timeout=TIMEOUT)
    assert running.probe()["env"]["CONDA_DEFAULT_ENV"] == "realenv"


def test_unknown_and_vanished_kernels(world: Any, tmp_path: Path) -> None:
    import shutil

    from kernel_mgmt.discovery import NoSuchKernel
    from kernel_mgmt.subproc.launcher import KernelLaunchError

    with pytest.raises(NoSuchKernel, match="conda/nope-python3"):
        asyncio.run(provider.launch("nope-python3", None, None))
    prefix = world.make_env(world.tmp / "shortlived", packages=("ipykernel-6.0.0-py_0",))
    world.environments_txt(prefix)
    assert "shortlived-python3" in dict(provider.find_kernels())
    shutil.rmtree(prefix / "conda-meta")
    with pytest.raises((KernelLaunchError, NoSuchKernel), match="shortlived"):
        asyncio.run(provider.launch("shortlived-python3", None, None))
    assert not list((tmp_path / "runtime").glob("kernel-*.json"))


def test_with_kernel_mgmt_client(world: Any, real_env_root: Path) -> None:
    """The project's own blocking client drives a conda kernel: execute, interrupt, shutdown."""
    from kernel_mgmt.client import BlockingKernelClient as OurClient

    info, manager = asyncio.run(provider.launch("realenv-python3", None, None))
    client = OurClient(info, manager=manager)
    try:
        client.wait_for_ready(timeout=TIMEOUT)
        out: list[str] = []

        def hook(msg: Any) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])

        code = "import os, sys; print(sys.prefix == os.environ['CONDA_PREFIX'])"
        reply = client.execute_interactive(code, output_hook=hook, timeout=TIMEOUT)
        assert reply["content"]["status"] == "ok"
        assert "".join(out).strip() == "True"
        client.shutdown_or_terminate(timeout=10)
        assert manager.returncode is not None
    finally:
        client.close()
        asyncio.run(manager.kill())
        asyncio.run(manager.cleanup())
