"""The high-level API: start/run a kernel by type name, through the real finder."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

import psutil
import pytest

import kernel_mgmt
from kernel_mgmt.client import BlockingKernelClient, KernelClient, KernelDied
from kernel_mgmt.discovery import KernelFinder, KernelProviderBase
from kernel_mgmt.hl import (
    run_kernel_async,
    run_kernel_blocking,
    start_kernel_async,
    start_kernel_blocking,
)


@pytest.fixture(autouse=True)
def jupyter_dirs(tmp_path, monkeypatch):
    runtime = tmp_path / "runtime"
    path = tmp_path / "path"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PATH", str(path))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "pyimport,spec")
    yield path
    left = list(runtime.glob("kernel-*.json")) if runtime.exists() else []
    assert not left, f"connection files left behind: {left}"
    alive = [p for p in psutil.Process().children(recursive=True) if p.status() != "zombie"]
    assert not alive, f"processes left behind: {alive}"


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_top_level_names():
    assert kernel_mgmt.run_kernel_blocking is run_kernel_blocking
    assert kernel_mgmt.start_kernel_async is start_kernel_async


def test_seed_blocking_example(capsys):
    with run_kernel_blocking("pyimport/kernel") as kc:
        kc.execute_interactive("print(6 * 7)")
        pid = kc.manager.pid
    assert capsys.readouterr().out == "42\n"
    assert _pid_gone(pid)


async def test_seed_async_example():
    async with run_kernel_async("pyimport/kernel") as kc:
        reply = await kc.execute("a = 6 * 7")
        assert reply.content["status"] == "ok"
        reply = await kc.execute("a", user_expressions={"a": "a"})
        assert reply.content["user_expressions"]["a"]["data"]["text/plain"] == "42"
        km = kc.manager
    assert km.returncode == 0


async def test_start_kernel_async_with_cwd(tmp_path):
    km, kc = await start_kernel_async("pyimport/kernel", cwd=str(tmp_path), startup_timeout=30)
    try:
        assert isinstance(kc, KernelClient) and kc.manager is km
        out = []
        await kc.execute_interactive("import os; print(os.getcwd())", output_hook=out.append)
        assert [m.content["text"].strip() for m in out if m.msg_type == "stream"] == [str(tmp_path)]
    finally:
        await kc.shutdown_or_terminate()
        kc.close()


def test_start_kernel_blocking():
    km, kc = start_kernel_blocking("pyimport/kernel", startup_timeout=30)
    try:
        assert isinstance(kc, BlockingKernelClient)
        assert kc.execute("x = 1").content["status"] == "ok"
    finally:
        kc.shutdown_or_terminate()
        kc.close()
    assert km.returncode is not None


def test_run_blocking_after_kernel_died():
    """Leaving the context is clean even when the kernel is already dead."""
    with run_kernel_blocking("pyimport/kernel") as kc:
        pid = kc.manager.pid
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(KernelDied):
            kc.execute("1", timeout=10)
    assert _pid_gone(pid)


async def test_run_async_after_kernel_died():
    async with run_kernel_async("pyimport/kernel") as kc:
        km = kc.manager
        await km.kill()
    assert km.returncode is not None


def _write_spec(path, name, argv):
    d = path / "kernels" / name
    d.mkdir(parents=True)
    (d / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": name, "language": "python"})
    )


def test_kernelspec_that_exits_fails_fast_with_stderr(jupyter_dirs):
    code = "import sys; sys.stderr.write('boom: missing licence\\n'); sys.exit(7)"
    _write_spec(jupyter_dirs, "dying", [sys.executable, "-c", code, "{connection_file}"])
    t0 = time.monotonic()
    with pytest.raises(KernelDied) as exc:
        start_kernel_blocking("spec/dying", startup_timeout=30)
    assert time.monotonic() - t0 < 3  # 'at once': no timeout, no fixed wait
    assert exc.value.returncode == 7
    assert "boom: missing licence" in str(exc.value)


async def test_kernelspec_that_exits_fails_fast_async(jupyter_dirs):
    code = "import sys; sys.stderr.write('nope\\n'); sys.exit(2)"
    _write_spec(jupyter_dirs, "dying2", [sys.executable, "-c", code, "{connection_file}"])
    t0 = time.monotonic()
    with pytest.raises(KernelDied, match="exit code 2"):
        async with run_kernel_async("spec/dying2"):
            pass
    assert time.monotonic() - t0 < 3  # 'at once': no timeout, no fixed wait


def test_startup_timeout_leaves_nothing(jupyter_dirs):
    _write_spec(
        jupyter_dirs,
        "mute",
        [sys.executable, "-c", "import time; time.sleep(60)", "{connection_file}"],
    )
    with pytest.raises(TimeoutError):
        start_kernel_blocking("spec/mute", startup_timeout=0.5)


async def test_hl_inside_running_loop_blocking():
    asyncio.get_running_loop()
    with run_kernel_blocking("pyimport/kernel") as kc:
        assert kc.execute("1").content["status"] == "ok"


class _HangingProvider(KernelProviderBase):
    """A provider whose launch never finishes (a stuck remote or container start)."""

    id = "hang"

    def find_kernels(self):
        yield "k", {"display_name": "Hangs", "language": "python"}

    async def launch(self, name, cwd=None, launch_params=None):
        await asyncio.Event().wait()


async def test_start_kernel_async_bounds_a_hanging_launch():
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=r"launching hang/k took more than 0\.3 s"):
        await asyncio.wait_for(
            start_kernel_async(
                "hang/k", finder=KernelFinder([_HangingProvider()]), startup_timeout=0.3
            ),
            10,
        )
    assert time.monotonic() - t0 < 3
