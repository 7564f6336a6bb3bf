"""Launching a kernel process: kernel_mgmt vs jupyter_client, same kernel, same run.

Timed: from the launch call until it returns, i.e. connection file written and the
kernel process spawned (not the kernel's own start-up, which is the kernel's cost).
Every launched kernel is killed and cleaned up outside the timed region. Rows:

- ``bare Popen``: writing a connection file by hand + ``subprocess.Popen`` (the floor)
- ``kernel_mgmt launcher``: ``SubprocessKernelLauncher(...).launch()``
- ``kernel_mgmt finder``: ``KernelFinder.launch("spec/benchpy")`` (when the spec provider
  is installed): routing + launch-param handling + the launcher
- ``jupyter_client``: ``AsyncKernelManager(kernel_name="benchpy").start_kernel()``

The kernel is ipykernel from a kernelspec in a temporary JUPYTER_PATH. Run:
``.venv/bin/python benchmarks/bench_launch.py [--n N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

KERNEL = "benchpy"
ARGV = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def setup_env() -> str:
    root = tempfile.mkdtemp(prefix="bench-launch-")
    spec_dir = os.path.join(root, "path", "kernels", KERNEL)
    os.makedirs(spec_dir)
    with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
        json.dump({"argv": ARGV, "display_name": "bench", "language": "python"}, f)
    os.environ["JUPYTER_PATH"] = os.path.join(root, "path")
    os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(root, "runtime")
    os.environ["JUPYTER_DATA_DIR"] = os.path.join(root, "data")
    os.environ["JUPYTER_CONFIG_DIR"] = os.path.join(root, "config")
    os.environ["KERNEL_MGMT_PROVIDERS"] = "spec"
    os.environ["JUPYTER_PLATFORM_DIRS"] = "1"  # silences jupyter_core's migration warning
    return root


async def bare_popen() -> Callable[[], Awaitable[None]]:
    runtime = os.environ["JUPYTER_RUNTIME_DIR"]
    os.makedirs(runtime, exist_ok=True)
    path = os.path.join(runtime, f"kernel-{secrets.token_hex(8)}.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    ports = dict(shell_port=0, iopub_port=0, stdin_port=0, control_port=0, hb_port=0)
    with os.fdopen(fd, "w") as f:
        json.dump({"transport": "tcp", "ip": "127.0.0.1", "key": secrets.token_hex(32), **ports}, f)
    p = subprocess.Popen(
        [a.replace("{connection_file}", path) for a in ARGV],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )

    async def stop() -> None:
        p.kill()
        p.wait()
        os.unlink(path)

    return stop


async def ours_launcher() -> Callable[[], Awaitable[None]]:
    from kernel_mgmt.subproc.launcher import SubprocessKernelLauncher

    _info, km = await SubprocessKernelLauncher(ARGV, kernel_name=f"spec/{KERNEL}").launch()

    async def stop() -> None:
        await km.kill()
        await km.cleanup()

    return stop


_finder: Any = None


async def ours_finder() -> Callable[[], Awaitable[None]]:
    _info, km = await _finder.launch(f"spec/{KERNEL}")

    async def stop() -> None:
        await km.kill()
        await km.cleanup()

    return stop


async def jupyter_client_start() -> Callable[[], Awaitable[None]]:
    from jupyter_client.manager import AsyncKernelManager

    km = AsyncKernelManager(kernel_name=KERNEL)
    await km.start_kernel()

    async def stop() -> None:
        await km.shutdown_kernel(now=True)

    return stop


async def run(n: int) -> None:
    global _finder
    rows: dict[str, Callable[[], Awaitable[Callable[[], Awaitable[None]]]]] = {
        "bare Popen": bare_popen,
        "kernel_mgmt launcher": ours_launcher,
    }
    try:
        from kernel_mgmt.discovery import KernelFinder

        _finder = KernelFinder.from_entrypoints()
        names = [name for name, _ in await _finder.find_kernels_async()]
        if f"spec/{KERNEL}" in names:
            rows["kernel_mgmt finder"] = ours_finder
        else:
            print(f"(finder row skipped: spec/{KERNEL} not found; providers: {names})")
    except Exception as e:  # the finder is optional here; say why it is missing
        print(f"(finder row skipped: {type(e).__name__}: {e})")
    rows["jupyter_client"] = jupyter_client_start

    times: dict[str, list[float]] = {name: [] for name in rows}
    for start in rows.values():  # warm-up: imports, first discovery
        stop = await start()
        await stop()
    for _ in range(n):
        for name, start in rows.items():
            t0 = time.perf_counter()
            stop = await start()
            times[name].append((time.perf_counter() - t0) * 1000)
            await stop()

    floor = statistics.median(times["bare Popen"])
    jc = statistics.median(times["jupyter_client"])
    print(f"launch: call → kernel process spawned + connection file written, {n} runs each")
    print(f"{'':<22}{'median ms':>10}{'p90 ms':>9}{'x floor':>9}{'x jupyter_client':>18}")
    for name, ts in times.items():
        med = statistics.median(ts)
        p90 = sorted(ts)[int(0.9 * (len(ts) - 1))]
        print(f"{name:<22}{med:>10.2f}{p90:>9.2f}{med / floor:>9.2f}{med / jc:>18.2f}")
    best = "kernel_mgmt finder" if "kernel_mgmt finder" in times else "kernel_mgmt launcher"
    ratio = statistics.median(times[best]) / jc
    print(f"target (no fixed number in BENCHMARKS.md): faster than jupyter_client → {ratio:.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30, help="launches per row")
    args = ap.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    root = setup_env()
    try:
        asyncio.run(run(args.n))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
