"""The seed's documented examples (jupyter_kernel_mgmt 0.5.1 docs) run unchanged but for imports."""

from __future__ import annotations

import asyncio

import psutil
import pytest


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "path"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "pyimport,spec")
    yield
    left = list(runtime.glob("kernel-*.json")) if runtime.exists() else []
    assert not left, f"connection files left behind: {left}"
    alive = [p for p in psutil.Process().children(recursive=True) if p.status() != "zombie"]
    assert not alive, f"processes left behind: {alive}"


async def test_chapter_7_2_finding_kernel_types(capsys):
    """Chapter 7.2: find kernel types, launch one, IOLoopKernelClient, wait_for_ready."""
    startup_timeout = 60
    # --- the seed's code; only the import lines differ -----------------------------------
    from kernel_mgmt.client import IOLoopKernelClient
    from kernel_mgmt.discovery import KernelFinder

    kf = KernelFinder.from_entrypoints()

    ## Find available kernel types
    for name, attributes in kf.find_kernels():
        print(name, ":", attributes["display_name"])

    ## Start a kernel by name
    connect_info, manager = await kf.launch("pyimport/kernel")

    client = IOLoopKernelClient(connect_info, manager=manager)
    try:
        await asyncio.wait_for(client.wait_for_ready(), timeout=startup_timeout)
    except RuntimeError:
        await client.shutdown_or_terminate()
        await client.close()
        await manager.kill()

    # Use `manager` for lifecycle management, `client` for communication
    # --- end of the seed's code ----------------------------------------------------------
    try:
        assert "pyimport/kernel : " in capsys.readouterr().out
        reply = await client.execute("a = 6 * 7")
        assert reply.content["status"] == "ok"
        assert await manager.is_alive()
    finally:
        await client.shutdown_or_terminate()
        await client.close()
    assert not await manager.is_alive()


def test_chapter_8_1_blocking_example(capsys):
    """Chapter 8.1.2, verbatim but for the import."""
    from kernel_mgmt import run_kernel_blocking

    with run_kernel_blocking("pyimport/kernel") as kc:
        kc.execute_interactive("print(6 * 7)")

    assert capsys.readouterr().out == "42\n"


async def test_chapter_8_1_async_example():
    """Chapter 8.1.1 (with the intended run_kernel_async; the seed's text says _blocking)."""
    from kernel_mgmt import run_kernel_async

    async with run_kernel_async("pyimport/kernel") as kc:
        reply = await kc.execute("a = 6 * 7")
    assert reply.content["status"] == "ok"


async def test_chapter_7_2_error_path_cleans_up(tmp_path):
    """The same example with a kernel that dies at start: the seed's ``except RuntimeError``
    branch must catch our error (KernelDied is a RuntimeError) and leave nothing behind."""
    import json
    import sys

    spec = tmp_path / "path" / "kernels" / "dying"
    spec.mkdir(parents=True)
    code = "import sys; sys.stderr.write('no licence\\n'); sys.exit(4)"
    argv = [sys.executable, "-c", code, "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Dying", "language": "python"})
    )
    startup_timeout = 60
    caught = []
    # --- the seed's code; only the import lines and the kernel name differ ---------------
    from kernel_mgmt.client import IOLoopKernelClient
    from kernel_mgmt.discovery import KernelFinder

    kf = KernelFinder.from_entrypoints()
    connect_info, manager = await kf.launch("spec/dying")

    client = IOLoopKernelClient(connect_info, manager=manager)
    try:
        await asyncio.wait_for(client.wait_for_ready(), timeout=startup_timeout)
    except RuntimeError as e:
        caught.append(e)  # (added: record what was caught)
        await client.shutdown_or_terminate()
        await client.close()
        await manager.kill()
    # --- end of the seed's code ----------------------------------------------------------
    assert caught and "no licence" in str(caught[0])
    assert manager.returncode == 4
