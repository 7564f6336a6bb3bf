"""AsyncKernelRestarter with real kernels launched through the finder."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

import psutil
import pytest

from kernel_mgmt.client import KernelClient
from kernel_mgmt.discovery import KernelFinder
from kernel_mgmt.restarter import AsyncKernelRestarter, KernelRestarterBase


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


class Recorder:
    """Collects restarter events in order; lets a test await a given event."""

    def __init__(self, restarter: KernelRestarterBase) -> None:
        self.events: list[tuple[str, dict]] = []
        self._changed = asyncio.Event()
        for event in ("died", "restarted", "failed"):
            restarter.add_callback(lambda data, e=event: self._record(e, data), event)

    def _record(self, event: str, data: dict) -> None:
        self.events.append((event, data))
        self._changed.set()

    @property
    def names(self) -> list[str]:
        return [e for e, _ in self.events]

    async def wait_for(self, event: str, count: int = 1, timeout: float = 30) -> None:
        async def until() -> None:
            while self.names.count(event) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)


def sigkill(km) -> None:
    """Kill the kernel from outside (a crash, the OOM killer): not through its manager,
    whose kill() marks the exit as wanted."""
    os.kill(km.pid, signal.SIGKILL)


async def _dispose(*managers) -> None:
    for km in managers:
        await km.kill()
        await km.cleanup()


async def test_restarter_brings_back_killed_kernel():
    kf = KernelFinder.from_entrypoints()
    info, km = await kf.launch("pyimport/kernel")
    restarter = AsyncKernelRestarter(km, "pyimport/kernel", kf, time_to_dead=0.5)
    rec = Recorder(restarter)
    restarter.start()
    new_km = None
    try:
        kc = KernelClient(info, manager=km)
        await kc.wait_for_ready(timeout=30)
        kc.close()
        sigkill(km)
        await rec.wait_for("restarted")
        assert rec.names == ["died", "restarted"]
        died, restarted = rec.events[0][1], rec.events[1][1]
        assert died["returncode"] == -9
        new_km = restarted["manager"]
        assert new_km is not km and restarter.kernel_manager is new_km
        assert new_km.kernel_id == km.kernel_id == restarted["kernel_id"]
        # The finder passed the id to the launch: same connection file name too.
        assert os.path.basename(new_km.connection_file) == f"kernel-{km.kernel_id}.json"
        assert restarted["auto"] is True
        # Clients reconnect with the new connection info.
        kc2 = KernelClient(restarted["connection_info"], manager=new_km)
        await kc2.wait_for_ready(timeout=30)
        assert (await kc2.execute("1")).content["status"] == "ok"
        restarter.stop()
        await kc2.shutdown_or_terminate()
        kc2.close()
    finally:
        restarter.stop()
        await _dispose(km, *([new_km] if new_km else []))


async def test_restarter_fails_after_restart_limit(jupyter_dirs):
    code = "import time; time.sleep(0.2); raise SystemExit(1)"
    d = jupyter_dirs / "kernels" / "flaky"
    d.mkdir(parents=True)
    (d / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-c", code, "{connection_file}"],
                "display_name": "Flaky",
                "language": "python",
            }
        )
    )
    kf = KernelFinder.from_entrypoints()
    _, km = await kf.launch("spec/flaky")
    restarter = AsyncKernelRestarter(km, "spec/flaky", kf, restart_limit=2, time_to_dead=0.5)
    rec = Recorder(restarter)
    managers = [km]
    restarter.add_callback(lambda data: managers.append(data["manager"]), "restarted")
    restarter.start()
    try:
        await rec.wait_for("failed", timeout=30)
        assert rec.names == ["died", "restarted", "died", "restarted", "died", "failed"]
        assert rec.events[-1][1]["restart_count"] == 2
        assert not restarter.running
        # No more attempts after 'failed'.
        await asyncio.sleep(0.3)
        assert rec.names[-1] == "failed" and len(managers) == 3
    finally:
        restarter.stop()
        await _dispose(*managers)


async def test_manual_restart_keeps_kernel_id():
    kf = KernelFinder.from_entrypoints()
    _, km = await kf.launch("pyimport/kernel")
    restarter = AsyncKernelRestarter(km, "pyimport/kernel", kf)
    rec = Recorder(restarter)
    restarter.start()
    new_km = None
    try:
        assert await restarter.do_restart(auto=False)
        assert rec.names == ["restarted"]  # a manual restart is not a death
        new_km = restarter.kernel_manager
        assert km.returncode is not None, "the old kernel is stopped by a manual restart"
        assert new_km.kernel_id == km.kernel_id
        assert await new_km.is_alive()
        await asyncio.sleep(0.2)
        assert rec.names == ["restarted"]
    finally:
        restarter.stop()
        await _dispose(km, *([new_km] if new_km else []))


async def test_callbacks_validation_and_removal():
    class FakeManager:
        kernel_id = "k1"

        async def is_alive(self):
            return True

    restarter = AsyncKernelRestarter(FakeManager(), "pyimport/kernel", KernelFinder([]))

    def cb(data):
        pass

    restarter.add_callback(cb, "died")
    restarter.remove_callback(cb, "died")
    restarter.remove_callback(cb, "died")  # quiet when absent
    assert restarter.callbacks["died"] == []
    with pytest.raises(ValueError, match="unknown event"):
        restarter.add_callback(cb, "exploded")
    with pytest.raises(TypeError):
        AsyncKernelRestarter(FakeManager(), "x/y", KernelFinder([]), bogus=1)


async def test_concurrent_polls_restart_a_dead_kernel_once():
    """poll() is public: the application may call it while the restarter's own watch does.
    One death must give one 'died' and one relaunch, even when callbacks are async."""
    kf = KernelFinder.from_entrypoints()
    _, km = await kf.launch("pyimport/kernel")
    restarter = AsyncKernelRestarter(km, "pyimport/kernel", kf)
    managers = [km]

    async def on_died(data):
        await asyncio.sleep(0)  # an async callback yields to the other poll

    restarter.add_callback(on_died, "died")
    rec = Recorder(restarter)
    restarter.add_callback(lambda data: managers.append(data["manager"]), "restarted")
    try:
        sigkill(km)
        await km.wait(30)
        await asyncio.wait_for(asyncio.gather(restarter.poll(), restarter.poll()), 30)
        assert rec.names == ["died", "restarted"]
        assert len(managers) == 2
    finally:
        restarter.stop()
        await _dispose(*managers)


def _write_spec(path, name, spec):
    d = path / "kernels" / name
    d.mkdir(parents=True)
    (d / "kernel.json").write_text(json.dumps({"display_name": name, "language": "python", **spec}))


SLEEPER = {
    # Lives without speaking the protocol: enough for the restarter, which watches the process.
    "argv": [sys.executable, "-c", "import time; time.sleep(60)", "{connection_file}", "{flavour}"],
    "metadata": {
        "launch_parameter_schema": {
            "type": "object",
            "properties": {"flavour": {"type": "string", "default": "plain"}},
        }
    },
}


@pytest.mark.parametrize("through", ["finder", "hl"])
async def test_restart_keeps_cwd_and_launch_params(jupyter_dirs, tmp_path, through):
    """The relaunched kernel runs in the same directory with the same launch parameters,
    whether the application launched with the finder (the restarter finds the cwd itself)
    or with start_kernel_async (which records cwd and launch_params on the manager)."""
    from kernel_mgmt.hl import start_kernel_async

    _write_spec(jupyter_dirs, "sleeper", SLEEPER)
    workdir = tmp_path / "work"
    workdir.mkdir()
    kf = KernelFinder.from_entrypoints()
    kwargs = {"cwd": str(workdir), "launch_params": {"flavour": "mint"}}
    if through == "finder":
        _, km = await kf.launch("spec/sleeper", **kwargs)
        restarter = AsyncKernelRestarter(
            km, "spec/sleeper", kf, launch_params=kwargs["launch_params"], time_to_dead=0.5
        )
    else:
        spec = jupyter_dirs / "kernels" / "sleeper" / "kernel.json"
        real = json.loads(spec.read_text())
        # start_kernel_async waits for readiness: use ipykernel for the first launch.
        spec.write_text(
            json.dumps(
                {
                    **real,
                    "argv": [
                        sys.executable,
                        "-m",
                        "ipykernel_launcher",
                        "-f",
                        "{connection_file}",
                        "--IPKernelApp.log_level={flavour}",
                    ],
                    "metadata": {
                        "launch_parameter_schema": {
                            "type": "object",
                            "properties": {"flavour": {"type": "string", "default": "30"}},
                        }
                    },
                }
            )
        )
        kwargs["launch_params"] = {"flavour": "40"}
        km, kc = await start_kernel_async("spec/sleeper", finder=kf, startup_timeout=30, **kwargs)
        kc.close()
        restarter = AsyncKernelRestarter(km, "spec/sleeper", kf, time_to_dead=0.5)
    rec = Recorder(restarter)
    managers = [km]
    restarter.add_callback(lambda data: managers.append(data["manager"]), "restarted")
    restarter.start()
    try:
        sigkill(km)
        await rec.wait_for("restarted")
        new = psutil.Process(managers[1].pid)
        assert new.cwd() == str(workdir)
        flavour = kwargs["launch_params"]["flavour"]
        cmdline = await _cmdline(new)
        # An empty cmdline means the relaunched kernel already exited: say why.
        why = (new.status(), managers[1].returncode, managers[1].stderr_tail(), rec.names)
        assert any(part.endswith(flavour) for part in cmdline[-1:]), (cmdline, why)
    finally:
        restarter.stop()
        await _dispose(*managers)


async def _cmdline(proc: psutil.Process, timeout: float = 10) -> list[str]:
    """The process's command line once its exec has finished (empty if it exited first).

    Popen returns as soon as exec has begun (the close-on-exec error pipe closes), while
    the kernel is still loading the new program: /proc/<pid>/cmdline reads empty until
    exec has set up the new argument block, a window a busy machine widens.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            cmdline = proc.cmdline()
        except psutil.NoSuchProcess:
            return []
        if cmdline or not proc.is_running() or time.monotonic() > deadline:
            return cmdline
        await asyncio.sleep(0.01)


async def test_relaunch_errors_end_in_failed(jupyter_dirs):
    """A kernel type that can no longer be launched (its kernelspec was removed): every
    relaunch attempt fails, and 'failed' fires with the error, without a 'restarted'."""
    import shutil

    _write_spec(jupyter_dirs, "sleeper", SLEEPER)
    kf = KernelFinder.from_entrypoints()
    _, km = await kf.launch("spec/sleeper")
    restarter = AsyncKernelRestarter(km, "spec/sleeper", kf, restart_limit=3, time_to_dead=0.5)
    rec = Recorder(restarter)
    restarter.start()
    try:
        shutil.rmtree(jupyter_dirs / "kernels" / "sleeper")
        sigkill(km)
        await rec.wait_for("failed")
        assert rec.names == ["died", "failed"]
        failed = rec.events[-1][1]
        assert failed["restart_count"] == 3
        assert "sleeper" in str(failed["error"])
        assert not restarter.running
    finally:
        restarter.stop()
        await _dispose(km)


async def _no_kernels_after(runtime, seconds: float) -> None:
    """Wait *seconds* (longer than several polls); no kernel may run nor file remain."""
    await asyncio.sleep(seconds)
    left = list(runtime.glob("kernel-*.json")) if runtime.exists() else []
    assert not left, f"connection files left behind: {left}"
    alive = [p for p in psutil.Process().children(recursive=True) if p.status() != "zombie"]
    assert not alive, f"a kernel was relaunched: {alive}"


async def test_shutdown_or_terminate_is_not_a_death(tmp_path):
    """A kernel shut down by its owning client is gone for good: no 'died', no
    relaunch of a kernel nobody owns, no connection file left, the restarter stops."""
    kf = KernelFinder.from_entrypoints()
    info, km = await kf.launch("pyimport/kernel")
    restarter = AsyncKernelRestarter(km, "pyimport/kernel", kf, time_to_dead=0.2)
    rec = Recorder(restarter)
    restarter.start()
    try:
        kc = KernelClient(info, manager=km)
        await kc.wait_for_ready(timeout=30)
        await kc.shutdown_or_terminate()
        kc.close()
        await km.cleanup()
        assert km.shutdown_requested is True
        assert km.returncode == 0, "the kernel obeyed the shutdown_request"
        await _no_kernels_after(tmp_path / "runtime", 1.5)
        assert rec.names == []
        assert not restarter.running
    finally:
        restarter.stop()
        await _dispose(km, *[data["manager"] for e, data in rec.events if e == "restarted"])


async def test_kill_through_the_manager_is_not_a_death(tmp_path):
    kf = KernelFinder.from_entrypoints()
    _, km = await kf.launch("pyimport/kernel")
    restarter = AsyncKernelRestarter(km, "pyimport/kernel", kf, time_to_dead=0.2)
    rec = Recorder(restarter)
    restarter.start()
    try:
        await km.kill()
        await km.cleanup()
        await _no_kernels_after(tmp_path / "runtime", 1.5)
        assert rec.names == [] and not restarter.running
    finally:
        restarter.stop()
        await _dispose(km, *[data["manager"] for e, data in rec.events if e == "restarted"])


async def test_shutdown_with_restart_is_relaunched():
    """shutdown_request with restart=True: the kernel exits and is brought back."""
    kf = KernelFinder.from_entrypoints()
    info, km = await kf.launch("pyimport/kernel")
    restarter = AsyncKernelRestarter(km, "pyimport/kernel", kf, time_to_dead=0.2)
    rec = Recorder(restarter)
    restarter.start()
    try:
        kc = KernelClient(info, manager=km)
        await kc.wait_for_ready(timeout=30)
        await asyncio.wait_for(kc.shutdown(restart=True), 30)
        kc.close()
        assert km.shutdown_requested is False
        await rec.wait_for("restarted")
        assert rec.names == ["died", "restarted"]
    finally:
        restarter.stop()
        await _dispose(km, *[data["manager"] for e, data in rec.events if e == "restarted"])


async def test_manager_without_shutdown_requested_still_restarts():
    """Third-party managers need not have the attribute: their deaths are deaths."""

    class DeadManager:
        __slots__ = ()
        kernel_id = "k1"

        async def is_alive(self):
            return False

        async def cleanup(self):
            pass

    restarter = AsyncKernelRestarter(DeadManager(), "pyimport/kernel", KernelFinder([]))
    restarter.restart_limit = 1
    rec = Recorder(restarter)
    await asyncio.wait_for(restarter.poll(), 30)
    assert rec.names == ["died", "failed"], "treated as a death; relaunch attempted"
