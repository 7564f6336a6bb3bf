"""Port allocation: no collisions, even with 100 kernels starting at once."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kernel_mgmt import ports as connection
from kernel_mgmt.connection import allocate_ports, ephemeral_port_range, release_ports
from kernel_mgmt.subproc.manager import KernelManager

TIMEOUT = 60
N_KERNELS = 100

# A "kernel" that binds all five ports of its connection file (plain listening sockets,
# no SO_REUSEADDR), reports, and holds them until told to release: every kernel's
# ports are held at the same moment, so any collision shows up as a bind failure.
BINDER = r"""
import json, os, socket, sys, time
info = json.load(open(sys.argv[1]))
held = []
for name in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"):
    s = socket.socket()
    try:
        s.bind((info["ip"], info[name]))
    except OSError as e:
        print(f"bind {name}={info[name]} failed: {e}", file=sys.stderr)
        sys.exit(1)
    s.listen()
    held.append(s)
out = os.environ["BINDER_OUT"]
open(os.path.join(out, f"bound-{os.getpid()}"), "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(os.path.join(out, "release")) and time.monotonic() < deadline:
    time.sleep(0.02)
"""


@pytest.fixture
def binder_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A real kernelspec 'binder' in a private JUPYTER_PATH; returns (resource_dir, out)."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "path"))
    out = tmp_path / "out"
    out.mkdir()
    resource_dir = tmp_path / "path" / "kernels" / "binder"
    resource_dir.mkdir(parents=True)
    (resource_dir / "binder.py").write_text(BINDER)
    spec = {
        "argv": ["python", "-I", "-S", "{resource_dir}/binder.py", "{connection_file}"],
        "display_name": "Port binder",
        "language": "python",
        "env": {"BINDER_OUT": str(out)},
    }
    (resource_dir / "kernel.json").write_text(json.dumps(spec))
    return resource_dir, out


def _free(ip: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
        return True


def test_ports_are_outside_the_ephemeral_range_and_free() -> None:
    lo, hi = ephemeral_port_range()
    ports = allocate_ports()
    assert len(set(ports)) == 5
    for port in ports:
        assert port >= connection.MIN_PORT and not lo <= port <= hi
        assert _free("127.0.0.1", port)
    release_ports(ports)


def test_reservations_keep_ports_distinct_before_anyone_binds() -> None:
    batches = [allocate_ports() for _ in range(400)]
    flat = [p for batch in batches for p in batch]
    assert len(set(flat)) == len(flat) == 2000
    for batch in batches:
        release_ports(batch)


def test_threads_allocating_at_once_get_distinct_ports() -> None:
    results: list[list[int]] = []
    lock = threading.Lock()

    def work() -> None:
        got = [allocate_ports() for _ in range(50)]
        with lock:
            results.extend(got)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    flat = [p for batch in results for p in batch]
    assert len(flat) == 2000 and len(set(flat)) == 2000
    for batch in results:
        release_ports(batch)


def test_port_in_use_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        if not _free("127.0.0.1", taken + 1):
            pytest.skip(f"port {taken + 1} is busy on this machine; need it free for the test")
        monkeypatch.setattr(connection, "_port_pool", lambda: [(taken, taken + 1)])
        monkeypatch.setattr(connection, "MIN_POOL", 1)
        for _ in range(20):
            (port,) = allocate_ports(n=1)
            assert port == taken + 1
            release_ports([port])


def test_small_pool_falls_back_to_os_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "ephemeral_port_range", lambda: (1024, 65535))
    ports = allocate_ports()
    assert len(set(ports)) == 5 and all(_free("127.0.0.1", p) for p in ports)
    release_ports(ports)


# Allocates ports in a separate process, holding them (never binding: only the
# registries can keep processes apart) until the test says every process is done.
ALLOCATOR = r"""
import json, os, sys, time
from kernel_mgmt.connection import allocate_ports, release_ports
out, go = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 60
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.005)
batches = [allocate_ports() for _ in range(100)]
with open(out + ".tmp", "w") as f:
    json.dump(batches, f)
os.rename(out + ".tmp", out)
while not os.path.exists(go + ".release") and time.monotonic() < deadline:
    time.sleep(0.005)
for batch in batches:
    release_ports(batch)
"""


def test_processes_allocating_at_once_get_distinct_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    registry = tmp_path / "registry"
    monkeypatch.setenv(connection.ENV_PORT_REGISTRY, str(registry))
    go = tmp_path / "go"
    outs = [tmp_path / f"out{i}.json" for i in range(4)]
    procs = [subprocess.Popen([sys.executable, "-c", ALLOCATOR, str(out), str(go)]) for out in outs]
    try:
        go.touch()
        deadline = time.monotonic() + TIMEOUT
        while not all(out.exists() for out in outs):
            assert all(p.poll() is None for p in procs), "an allocator process failed"
            assert time.monotonic() < deadline, "allocators did not finish in time"
            time.sleep(0.01)
        flat = [p for out in outs for batch in json.loads(out.read_text()) for p in batch]
        assert len(flat) == 2000
        assert len(set(flat)) == 2000, "two processes were handed the same port"
        assert len(os.listdir(registry)) == 2000
        (tmp_path / "go.release").touch()
        assert [p.wait(TIMEOUT) for p in procs] == [0] * 4
        assert os.listdir(registry) == []  # released on the way out
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_stale_registry_entries_are_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "registry"
    monkeypatch.setenv(connection.ENV_PORT_REGISTRY, str(registry))
    connection._registry_dir()
    assert stat.S_IMODE(registry.stat().st_mode) == 0o700
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-I", "-S", "-c", "pass"])
    dead.wait()
    candidates = range(connection.MIN_PORT, connection.MIN_PORT + 50)
    free = [p for p in candidates if _free("127.0.0.1", p)][:2]
    if len(free) < 2:
        pytest.skip("no two free ports near MIN_PORT on this machine")
    (registry / str(free[0])).write_text(str(dead.pid))  # owner gone
    (registry / str(free[1])).write_text(str(os.getppid()))  # owner alive
    monkeypatch.setattr(connection, "_port_pool", lambda: [(free[0], free[0])])
    monkeypatch.setattr(connection, "MIN_POOL", 1)
    (port,) = allocate_ports(n=1)
    assert port == free[0]
    assert (registry / str(port)).read_text() == str(os.getpid())
    release_ports([port])
    assert not (registry / str(port)).exists()
    monkeypatch.setattr(connection, "_port_pool", lambda: [(free[1], free[1])])
    with pytest.raises(OSError, match="could not find"):
        allocate_ports(n=1)


RACER = r"""
import os, sys, time
from kernel_mgmt import ports as connection
registry, port, delay, go, done = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), *sys.argv[4:]
judge = connection._stale

def slow_stale(entry):
    # Widen the window between judging an entry stale and acting on it, by a different
    # amount in each racer, so that one acts only after the other has re-claimed the port.
    stale = judge(entry)
    if stale:
        time.sleep(delay)
    return stale

connection._stale = slow_stale
deadline = time.monotonic() + 30
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.001)
print(connection._claim(registry, port), flush=True)
while not os.path.exists(done) and time.monotonic() < deadline:  # stay alive: a live owner
    time.sleep(0.01)
"""


def test_racing_takeovers_of_a_stale_entry_have_one_winner(tmp_path: Path) -> None:
    """Two processes that both find an entry stale must not both take the port over."""
    import subprocess
    import sys

    registry = tmp_path / "registry"
    registry.mkdir(mode=0o700)
    dead = subprocess.Popen([sys.executable, "-I", "-S", "-c", "pass"])
    dead.wait()
    port = 23456
    (registry / str(port)).write_text(str(dead.pid))  # owner gone: stale
    go, done = tmp_path / "go", tmp_path / "done"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(registry), str(port), str(delay), str(go), str(done)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for delay in (0.1, 0.4)
    ]
    try:
        go.touch()
        results = [r.stdout.readline().strip() for r in racers]
    finally:
        done.touch()
        for r in racers:
            r.wait(TIMEOUT)
            r.stdout.close()
    assert sorted(results) == ["False", "True"]


def test_unsafe_registry_dir_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o777)
    open_dir.chmod(0o777)
    monkeypatch.setenv(connection.ENV_PORT_REGISTRY, str(open_dir))
    assert connection._registry_dir() is None
    ports = allocate_ports()  # still works, in-process reservations only
    assert os.listdir(open_dir) == []
    release_ports(ports)


async def _launch_all(launch: Any, out: Path) -> None:
    results = await asyncio.gather(*(launch() for _ in range(N_KERNELS)))
    managers: list[KernelManager] = [km for _, km in results]
    try:
        ports = [info[n] for info, _ in results for n in connection.PORT_NAMES]
        assert len(set(ports)) == 5 * N_KERNELS
        # Every kernel binds and holds its ports; none may fail (exit 1: address in use).
        deadline = time.monotonic() + TIMEOUT
        while len(list(out.glob("bound-*"))) < N_KERNELS:
            dead = [km for km in managers if km.returncode is not None]
            assert not dead, [(km.returncode, km.stderr_tail()) for km in dead]
            assert time.monotonic() < deadline, "kernels did not all bind in time"
            await asyncio.sleep(0.02)
        (out / "release").touch()
        codes = [await km.wait(TIMEOUT) for km in managers]
        assert codes == [False] * N_KERNELS
        assert [km.returncode for km in managers] == [0] * N_KERNELS
    finally:
        for km in managers:
            await km.kill()
            await km.cleanup()


async def test_100_concurrent_launches_of_a_binding_kernelspec(
    binder_spec: tuple[Path, Path], tmp_path: Path
) -> None:
    from kernel_mgmt.kernelspec import read_kernel_spec
    from kernel_mgmt.subproc.launcher import SubprocessKernelLauncher

    resource_dir, out = binder_spec
    spec = read_kernel_spec(str(resource_dir))

    def launch() -> Any:
        return SubprocessKernelLauncher(
            spec["argv"],
            extra_env=spec.get("env"),
            resource_dir=str(resource_dir),
            kernel_name="spec/binder",
        ).launch()

    await _launch_all(launch, out)
    assert list((tmp_path / "runtime").iterdir()) == []


async def test_100_concurrent_finder_launches(
    binder_spec: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernel_mgmt.discovery import KernelFinder

    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "spec")
    # Generous discovery timeout: 100 kernel processes share two busy cores here.
    finder = KernelFinder.from_entrypoints(timeout=TIMEOUT)
    assert "spec/binder" in [name for name, _ in await finder.find_kernels_async()]
    _resource_dir, out = binder_spec
    await _launch_all(lambda: finder.launch("spec/binder"), out)
    assert list((tmp_path / "runtime").iterdir()) == []
