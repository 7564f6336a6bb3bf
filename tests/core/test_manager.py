"""KernelManager: signals to the process group, interrupt modes, kill, wait, cleanup."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from kernel_mgmt.connection import channel_url
from kernel_mgmt.managerabc import KernelManagerABC
from kernel_mgmt.protocol import Session
from kernel_mgmt.subproc.launcher import SubprocessKernelLauncher
from kernel_mgmt.subproc.manager import InterruptModeError, KernelManager

from .conftest import TIMEOUT, channel_request

# A stand-in kernel that starts N children; every process records the signals it gets
# as files "<name>.<SIGNAME>" and announces itself with "<name>.ready".
GROUP_KERNEL = r"""
import os, signal, subprocess, sys, time
out, n = sys.argv[2], int(sys.argv[3])
CHILD = '''
import os, signal, sys, time
name = sys.argv[1]
def record(signum, frame):
    open(name + "." + signal.Signals(signum).name, "w").close()
    if signum == signal.SIGTERM:
        sys.exit(0)
signal.signal(signal.SIGINT, record)
signal.signal(signal.SIGTERM, record)
open(name + ".ready", "w").close()
while True:
    time.sleep(60)
'''
children = [
    subprocess.Popen([sys.executable, "-I", "-S", "-c", CHILD, os.path.join(out, f"child{i}")])
    for i in range(n)
]
exec(CHILD.replace("sys.argv[1]", repr(os.path.join(out, "kernel"))))
"""


async def until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Await a condition another process brings about (files appearing), with a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.005)


async def start_group(
    out: Path, n: int = 3, **kwargs: Any
) -> tuple[dict[str, Any], KernelManager, list[str]]:
    argv = ["python", "-I", "-S", "-c", GROUP_KERNEL, "{connection_file}", str(out), str(n)]
    info, km = await SubprocessKernelLauncher(argv, **kwargs).launch()
    names = ["kernel", *(f"child{i}" for i in range(n))]
    await until(lambda: all((out / f"{name}.ready").exists() for name in names))
    return info, km, names


def test_manager_needs_a_popen() -> None:
    with pytest.raises(TypeError, match=r"subprocess\.Popen"):
        KernelManager(object())  # type: ignore[arg-type]


def test_abc_is_abstract() -> None:
    with pytest.raises(TypeError):
        KernelManagerABC()  # type: ignore[abstract]
    assert issubclass(KernelManager, KernelManagerABC)


async def test_interrupt_reaches_kernel_children(
    jupyter_env: Path, tmp_path: Path, reaper: list[KernelManager]
) -> None:
    _info, km, names = await start_group(tmp_path, 3)
    reaper.append(km)
    await km.interrupt()
    await until(lambda: all((tmp_path / f"{name}.SIGINT").exists() for name in names))
    assert await km.is_alive()  # SIGINT was recorded, not fatal


async def test_signal_and_terminate_reach_the_group(
    jupyter_env: Path, tmp_path: Path, reaper: list[KernelManager]
) -> None:
    _info, km, names = await start_group(tmp_path, 2)
    reaper.append(km)
    await km.signal(signal.SIGINT)
    await until(lambda: all((tmp_path / f"{name}.SIGINT").exists() for name in names))
    assert km.shutdown_requested is False, "a signal is not a request to go"
    await km.terminate()
    assert km.shutdown_requested is True, "a restarter must not relaunch it"
    assert await km.wait(TIMEOUT) is False
    assert km.returncode == 0
    await until(lambda: all((tmp_path / f"{name}.SIGTERM").exists() for name in names))


async def test_kill_takes_down_children_and_is_quiet_twice(
    jupyter_env: Path, tmp_path: Path, reaper: list[KernelManager]
) -> None:
    _info, km, _names = await start_group(tmp_path, 2)
    reaper.append(km)
    assert km.shutdown_requested is False and KernelManagerABC.shutdown_requested is False
    await km.kill()
    assert km.shutdown_requested is True, "a restarter must not relaunch it"
    assert km.returncode == -signal.SIGKILL
    assert not await km.is_alive()
    await km.kill()  # already dead: no ProcessLookupError
    await km.signal(signal.SIGINT)
    await km.interrupt()
    # The children were in the group too: the stderr pipe they shared reaches EOF.
    assert km._stderr is not None and km._stderr.join(TIMEOUT)


async def test_kill_after_natural_exit_is_quiet(
    jupyter_env: Path, reaper: list[KernelManager]
) -> None:
    _info, km = await SubprocessKernelLauncher(["python", "-I", "-S", "-c", "pass"]).launch()
    reaper.append(km)
    assert await km.wait(TIMEOUT) is False
    assert km.returncode == 0
    await km.kill()
    await km.kill()
    assert km.returncode == 0


async def test_message_mode_interrupt_is_refused_without_signalling(
    jupyter_env: Path, tmp_path: Path, reaper: list[KernelManager]
) -> None:
    _info, km, _names = await start_group(tmp_path, 1, interrupt_mode="message")
    reaper.append(km)
    assert km.interrupt_mode == "message"
    with pytest.raises(InterruptModeError, match="interrupt_request"):
        await km.interrupt()
    assert not list(tmp_path.glob("*.SIGINT"))
    assert await km.is_alive()


async def test_wait_timeout_and_other_loops(jupyter_env: Path, reaper: list[KernelManager]) -> None:
    argv = ["python", "-I", "-S", "-c", "import time; time.sleep(60)"]
    _info, km = await SubprocessKernelLauncher(argv, kernel_id="waiter").launch()
    reaper.append(km)
    t0 = time.monotonic()
    assert await km.wait(0.05) is True
    assert 0.04 < time.monotonic() - t0 < 5
    assert km.returncode is None

    # A different event loop in another thread (as the blocking client does) can drive it.
    def other_loop() -> bool:
        async def go() -> bool:
            await km.kill()
            return await km.wait(TIMEOUT)

        return asyncio.run(go())

    assert await asyncio.to_thread(other_loop) is False
    assert await km.wait() is False
    assert km.returncode == -signal.SIGKILL


async def test_wait_is_woken_by_exit(jupyter_env: Path, reaper: list[KernelManager]) -> None:
    argv = ["python", "-I", "-S", "-c", "import time; time.sleep(60)"]
    _info, km = await SubprocessKernelLauncher(argv).launch()
    reaper.append(km)
    waiter = asyncio.create_task(km.wait(TIMEOUT))
    await asyncio.sleep(0)
    assert not waiter.done()
    await km.signal(signal.SIGTERM)
    assert await asyncio.wait_for(waiter, TIMEOUT) is False
    assert km.returncode == -signal.SIGTERM


async def test_cleanup_removes_files_and_dirs_twice(tmp_path: Path) -> None:
    f = tmp_path / "kernel-x.json"
    f.write_text("{}")
    d = tmp_path / "ipcdir"
    d.mkdir()
    (d / "kernel-1").write_text("")
    popen = subprocess.Popen([sys.executable, "-I", "-S", "-c", "pass"], start_new_session=True)
    km = KernelManager(popen, [str(f), str(d / "kernel-1"), str(d), str(tmp_path / "never")])
    assert km.kernel_id  # a uuid when the application chose none
    assert await km.wait(TIMEOUT) is False
    await km.cleanup()
    assert not f.exists() and not d.exists()
    await km.cleanup()
    assert km.stderr_tail() == ""  # stderr was not piped


async def test_manager_never_signals_callers_group() -> None:
    # A Popen made without a new session shares our process group: signals must go to
    # the kernel alone, never to the group (that would hit this test process).
    popen = subprocess.Popen([sys.executable, "-I", "-S", "-c", "import time; time.sleep(60)"])
    km = KernelManager(popen, kernel_id="app-chosen")
    assert km.kernel_id == "app-chosen"
    await km.interrupt()
    assert await km.wait(TIMEOUT) is False
    assert km.returncode == -signal.SIGINT  # the child died of it; we are still here
    await km.kill()


async def test_interrupt_ipykernel_execution(
    jupyter_env: Path, tmp_path: Path, reaper: list[KernelManager]
) -> None:
    """SIGINT to ipykernel's group turns a running execute into KeyboardInterrupt."""
    argv = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    info, km = await SubprocessKernelLauncher(argv, kernel_name="pyimport/kernel").launch()
    reaper.append(km)
    started = tmp_path / "started"
    code = f"import time; open({str(started)!r}, 'w').close(); time.sleep(60)"
    session = Session(info["key"])
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(channel_url(info, "shell"))
    try:
        request = session.send(sock, "execute_request", {"code": code, "silent": False})
        await until(started.exists)
        await km.interrupt()
        deadline = time.monotonic() + TIMEOUT
        reply = None
        while reply is None and time.monotonic() < deadline:
            if await asyncio.to_thread(sock.poll, 1000):
                msg = session.recv(sock)
                if msg and msg.parent_header.get("msg_id") == request.msg_id:
                    reply = msg
        assert reply is not None, "no execute_reply after interrupt"
        assert reply.content["status"] == "error"
        assert reply.content["ename"] == "KeyboardInterrupt"
    finally:
        sock.close()
    assert await km.is_alive()


async def test_cleanup_spares_a_newer_kernels_connection_file(
    jupyter_env: Path, reaper: list[KernelManager]
) -> None:
    # A restart under the same kernel_id rewrites kernel-<id>.json before the old
    # manager is cleaned up: the old cleanup must not delete the new kernel's file.
    argv = ["python", "-I", "-S", "-c", "import time; time.sleep(60)"]
    _, old = await SubprocessKernelLauncher(argv, kernel_id="same").launch()
    reaper.append(old)
    await old.kill()
    _, new = await SubprocessKernelLauncher(argv, kernel_id="same").launch()
    reaper.append(new)
    assert old.connection_file == new.connection_file
    await old.cleanup()
    assert Path(new.connection_file).exists()
    await new.kill()
    await new.cleanup()
    assert not Path(new.connection_file).exists()


async def test_signals_after_exit_spare_a_reused_pid(
    jupyter_env: Path, reaper: list[KernelManager]
) -> None:
    """Once the kernel is reaped its pid is free: if the OS gives it to a new session leader
    (another kernel, say), kill()/interrupt()/signal() on the old manager must not hit it."""
    _info, km = await SubprocessKernelLauncher(["python", "-I", "-S", "-c", "pass"]).launch()
    reaper.append(km)
    assert await km.wait(TIMEOUT) is False
    other = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        # Pid reuse cannot be forced; put the manager in the state it would then be in.
        km.pid = km._pgid = other.pid
        await km.kill()
        await km.interrupt()
        await km.signal(signal.SIGTERM)
        # Signals are delivered asynchronously: give a wrongly sent SIGKILL time to land.
        with pytest.raises(subprocess.TimeoutExpired):
            other.wait(0.5)
    finally:
        other.kill()
        other.wait(TIMEOUT)


async def test_seed_popen_forms(tmp_path: Path) -> None:
    """The seed documents KernelManager(popen, files_to_cleanup=None, win_interrupt_evt=None)
    with popen a subprocess.Popen or an asyncio.subprocess.Process."""
    f = tmp_path / "kernel-seed.json"
    f.write_text("{}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-S", "-c", "import time; time.sleep(60)", start_new_session=True
    )
    km = KernelManager(proc, [str(f)], None)
    # The seed's own launcher passes it by keyword.
    assert KernelManager(proc, win_interrupt_evt=None).pid == proc.pid
    try:
        assert km.pid == proc.pid
        assert await km.is_alive() and km.returncode is None
        assert await km.wait(0.05) is True
        await km.interrupt()
        assert await km.wait(TIMEOUT) is False
        assert km.returncode == proc.returncode == -signal.SIGINT
        assert not await km.is_alive()
        await km.kill()  # quiet on an exited kernel
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    await km.cleanup()
    assert not f.exists()


def _execute(
    info: dict[str, Any], code: str, user_expressions: dict[str, str], timeout: float = TIMEOUT
) -> dict[str, Any]:
    """Run *code* on the kernel's shell channel (our protocol layer); return the reply content."""
    content = {"code": code, "silent": False, "user_expressions": user_expressions}
    return channel_request(info, "execute_request", content, timeout=timeout)


async def test_interrupt_reaches_sleep_children_of_a_spec_kernel(
    jupyter_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reaper: list[KernelManager]
) -> None:
    """The seed's own test: a kernel (ipykernel from a kernelspec, launched through the finder)
    starts several ``sleep`` processes; one interrupt() makes every one of them die of SIGINT,
    while the kernel itself survives and keeps answering."""
    import json
    import shutil

    from kernel_mgmt.discovery import KernelFinder

    sleep = shutil.which("sleep")
    if sleep is None:  # pragma: no cover - coreutils are everywhere this suite runs
        pytest.skip("no `sleep` program on PATH")
    spec_dir = tmp_path / "path" / "kernels" / "signaltest"
    spec_dir.mkdir(parents=True)
    argv = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Signal test", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "spec")
    finder = KernelFinder.from_entrypoints(timeout=TIMEOUT)
    info, km = await finder.launch("spec/signaltest")
    reaper.append(km)
    n = 5
    start = (
        f"import subprocess\nchildren = [subprocess.Popen([{sleep!r}, '60']) for _ in range({n})]"
    )
    reply = await asyncio.to_thread(
        _execute, info, start, {"polls": "[c.poll() for c in children]"}
    )
    assert reply["status"] == "ok", reply
    assert reply["user_expressions"]["polls"]["data"]["text/plain"] == repr([None] * n)
    await km.interrupt()
    check = "codes = [c.wait(10) for c in children]"
    reply = await asyncio.to_thread(_execute, info, check, {"codes": "codes"})
    assert reply["status"] == "ok", reply
    assert reply["user_expressions"]["codes"]["data"]["text/plain"] == repr([-signal.SIGINT] * n)
    assert await km.is_alive()
    await km.kill()
    await km.cleanup()
    assert list(jupyter_env.iterdir()) == []
