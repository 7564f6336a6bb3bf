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
    """Chapter 8.1.1 with the intended run_kernel_async."""
    from kernel_mgmt import run_kernel_async

    async with run_kernel_async("pyimport/kernel") as kc:
        reply = await kc.execute("a = 6 * 7")
    assert reply.content["status"] == "ok"


async def test_chapter_8_1_async_example_verbatim():
    """Chapter 8.1.1 exactly as printed: ``async with run_kernel_blocking(...)`` and
    ``await kc.execute(...)``, which gives (and needs) the async client."""
    from kernel_mgmt import KernelClient, run_kernel_blocking

    async with run_kernel_blocking("pyimport/kernel") as kc:
        reply = await kc.execute("a = 6 * 7")
    assert isinstance(kc, KernelClient)
    assert reply.content["status"] == "ok"
    assert kc.manager.returncode is not None


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


# The signatures chapter 8 documents (jupyter_kernel_mgmt 0.5.1), as printed there: ours must
# accept the same parameters, in the same order, with the same defaults. Ours may add
# parameters after them (keyword-only or with defaults).
DOCUMENTED = {
    "kernel_mgmt.client_base:KernelClient": "connection_info, manager=None, use_heartbeat=True",
    "kernel_mgmt.client:IOLoopKernelClient": "connection_info, manager=None",
    "kernel_mgmt.client:KernelClient.close": "",
    "kernel_mgmt.client:KernelClient.comm_info": "target_name=None, _header=None",
    "kernel_mgmt.client:KernelClient.complete": "code, cursor_pos=None, _header=None",
    "kernel_mgmt.client:KernelClient.execute": (
        "code, silent=False, store_history=True, user_expressions=None, allow_stdin=None, "
        "stop_on_error=True, interrupt_timeout=None, idle_timeout=None, "
        "raise_on_no_idle=False, _header=None"
    ),
    "kernel_mgmt.client:KernelClient.history": (
        "raw=True, output=False, hist_access_type='range', _header=None, **kwargs"
    ),
    "kernel_mgmt.client:KernelClient.input": "string, parent=None",
    "kernel_mgmt.client:KernelClient.inspect": (
        "code, cursor_pos=None, detail_level=0, _header=None"
    ),
    "kernel_mgmt.client:KernelClient.interrupt": "_header=None",
    "kernel_mgmt.client:KernelClient.is_complete": "code, _header=None",
    "kernel_mgmt.client:KernelClient.kernel_info": "_header=None",
    "kernel_mgmt.client:KernelClient.shutdown": "restart=False, _header=None",
    "kernel_mgmt.client:KernelClient.add_handler": "handler, channels",
    "kernel_mgmt.client:KernelClient.remove_handler": "handler, channels=None",
    "kernel_mgmt.client:KernelClient.shutdown_or_terminate": "timeout=5.0",
    "kernel_mgmt.restarter:KernelRestarterBase": (
        "kernel_manager, kernel_type, kernel_finder=None, **kw"
    ),
    "kernel_mgmt.restarter:KernelRestarterBase.start": "",
    "kernel_mgmt.restarter:KernelRestarterBase.stop": "",
    "kernel_mgmt.restarter:KernelRestarterBase.add_callback": "f, event",
    "kernel_mgmt.restarter:KernelRestarterBase.remove_callback": "f, event",
    "kernel_mgmt.restarter:KernelRestarterBase.do_restart": "auto=False",
    "kernel_mgmt.restarter:KernelRestarterBase.poll": "",
    "kernel_mgmt.restarter:TornadoKernelRestarter": (
        "kernel_manager, kernel_type, kernel_finder=None, **kw"
    ),
    "kernel_mgmt:run_kernel_async": "name, **kwargs",
    "kernel_mgmt:start_kernel_async": "name, cwd=None, launch_params=None, finder=None",
    "kernel_mgmt:run_kernel_blocking": "name, **kwargs",
    "kernel_mgmt:start_kernel_blocking": (
        "name, *, cwd=None, launch_params=None, finder=None, startup_timeout=60"
    ),
}


def _params(text: str) -> list[tuple[str, str, object]]:
    """``"a, b=1, *, c=None, **kw"`` -> [(name, kind, default), ...] via a real signature."""
    import inspect

    namespace: dict = {}
    exec(f"def f({text}): pass", namespace)
    return [
        (p.name, p.kind.name, p.default)
        for p in inspect.signature(namespace["f"]).parameters.values()
    ]


@pytest.mark.parametrize("target", sorted(DOCUMENTED))
def test_documented_signature(target: str) -> None:
    import importlib
    import inspect

    module, _, path = target.partition(":")
    obj = importlib.import_module(module)
    for part in path.split("."):
        obj = getattr(obj, part)
    if inspect.isclass(obj):
        obj = obj.__init__
    ours = [
        (p.name, p.kind.name, p.default)
        for p in inspect.signature(obj).parameters.values()
        if p.name != "self"
    ]
    documented = _params(DOCUMENTED[target])
    var_kw = [p for p in documented if p[1] == "VAR_KEYWORD"]
    head = [p for p in documented if p[1] != "VAR_KEYWORD"]
    assert ours[: len(head)] == head, f"{target}: {ours} does not start with {documented}"
    extra = ours[len(head) :]
    if var_kw:
        assert extra and extra[-1][1] == "VAR_KEYWORD", f"{target} lost **kwargs: {ours}"
        extra = extra[:-1]
    for name, kind, default in extra:  # additions must not change how documented calls bind
        assert kind == "KEYWORD_ONLY" or default is not inspect.Parameter.empty, (target, name)
    if target.endswith(("do_restart", "poll")):
        assert inspect.iscoroutinefunction(obj), f"{target} is async in the seed"
