"""REPL kernels: our bash kernel vs bash_kernel 0.10 vs metakernel's bash (the second table
of ``bench_wrapper.py``; see its docstring). Also runs alone:

    .venv/bin/python benchmarks/bench_repl.py [--spawns 5] [--n 200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import zmq

from kernel_mgmt.connection import write_connection_file

METAKERNEL_BASH = "from metakernel.process_metakernel import BashKernel; BashKernel.run_as_main()"
KERNELS: dict[str, list[str]] = {
    "ours": [sys.executable, "-m", "wrapper_kernel.examples.bash", "-f", "{cf}"],
    "bash_kernel": [sys.executable, "-m", "bash_kernel", "-f", "{cf}"],
    "metakernel": [sys.executable, "-c", METAKERNEL_BASH, "-f", "{cf}"],
}
LOOP = "for i in 1 2 3; do echo $i; sleep 1; done"
EXECUTE = {"silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False}


def available() -> dict[str, list[str]]:
    """The kernels whose packages are installed (metakernel may not be)."""
    out = {}
    for name, argv in KERNELS.items():
        module = {"ours": "wrapper_kernel.examples.bash", "bash_kernel": "bash_kernel"}.get(
            name, "metakernel"
        )
        probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
        if probe.returncode == 0:
            out[name] = argv
        else:
            print(f"# {name}: not installed, left out", file=sys.stderr)
    return out


class Repl:
    """One running kernel and its client."""

    def __init__(self, ctx: zmq.Context, client_cls: Any, env: dict[str, str], argv: list[str]):
        tmp = env["HOME"]
        self.path, info = write_connection_file(os.path.join(tmp, f"{uuid.uuid4().hex}.json"))
        self.client = client_cls(ctx, info)
        self.iopub_wait = 0.0
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [a.replace("{cf}", self.path) for a in argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def execute(self, code: str, timeout: float = 60) -> tuple[str, dict[str, Any]]:
        msg_id = self.client.send("execute_request", {"code": code, **EXECUTE})
        return msg_id, self.client.recv_reply(msg_id, timeout)

    def iopub_until(self, pred: Callable[[dict, dict, dict], bool], timeout: float = 60) -> float:
        """Wait for an IOPub message matching ``pred(header, parent, content)``; its time."""
        deadline = time.monotonic() + timeout
        sock = self.client.iopub
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000) + 1):
                raise TimeoutError("no matching IOPub message")
            header, parent, content = self.client.parse(sock.recv_multipart())
            if pred(header, parent, content):
                return time.perf_counter()

    def close(self) -> None:
        self.client.close()
        with_children_kill(self.proc)
        os.unlink(self.path)


def with_children_kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the kernel and the bash it started (bash sits in its own session)."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    proc.kill()
    proc.wait(10)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()


def bench_start(ctx, client_cls, env, kernels, spawns):
    info: dict[str, list[float]] = {k: [] for k in kernels}
    first: dict[str, list[float]] = {k: [] for k in kernels}
    for rep in range(spawns + 1):  # the first round fills bytecode caches
        for name, argv in kernels.items():
            r = Repl(ctx, client_cls, env, argv)
            try:
                r.client.recv_reply(r.client.send("kernel_info_request", {}), 60)
                t1 = time.perf_counter()
                r.execute("echo hi")
                t2 = time.perf_counter()
            finally:
                r.close()
            if rep:
                info[name].append(t1 - r.t0)
                first[name].append(t2 - r.t0)
    return info, first


def bench_session(ctx, client_cls, env, kernels, n, interrupts, loops):
    reps = {k: Repl(ctx, client_cls, env, argv) for k, argv in kernels.items()}
    rtt: dict[str, list[float]] = {k: [] for k in kernels}
    intr: dict[str, list[float]] = {k: [] for k in kernels}
    after: dict[str, list[float]] = {k: [] for k in kernels}
    line1: dict[str, list[float]] = {k: [] for k in kernels}
    streamed: dict[str, list[bool]] = {k: [] for k in kernels}
    try:
        for r in reps.values():
            r.client.wait_ready(60)
            r.execute("echo warm")
        for i in range(n + 20):
            for name, r in reps.items():
                t0 = time.perf_counter()
                r.execute("echo hi")
                if i >= 20:
                    rtt[name].append(time.perf_counter() - t0)
        for _ in range(interrupts):
            for name, r in reps.items():
                msg_id = r.client.send("execute_request", {"code": "sleep 30", **EXECUTE})
                r.iopub_until(lambda h, p, c, m=msg_id: h["msg_type"] == "execute_input")
                time.sleep(0.3)  # let the sleep start
                t0 = time.perf_counter()
                r.proc.send_signal(signal.SIGINT)
                r.client.recv_reply(msg_id, 40)
                intr[name].append(time.perf_counter() - t0)
                t1 = time.perf_counter()
                r.execute("echo ok", 40)
                after[name].append(time.perf_counter() - t1)
        for _ in range(loops):
            for name, r in reps.items():
                t0 = time.perf_counter()
                msg_id = r.client.send("execute_request", {"code": LOOP, **EXECUTE})
                t1 = r.iopub_until(
                    lambda h, p, c, m=msg_id: (
                        h["msg_type"] == "stream"
                        and p.get("msg_id") == m
                        and "1" in c.get("text", "")
                    )
                )
                r.client.recv_reply(msg_id, 40)
                t2 = time.perf_counter()
                line1[name].append(t1 - t0)
                streamed[name].append(t2 - t1 > 1.5)  # the loop still had 2 s to go
    finally:
        for r in reps.values():
            r.close()
    return rtt, intr, after, line1, streamed


def run(client_cls: Any, kernel_env: Callable[[str], dict[str, str]], p99: Callable, **kw) -> int:
    spawns, n = kw.get("spawns", 5), kw.get("n", 200)
    kernels = available()
    ctx = zmq.Context()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(kernel_env(tmp), HOME=tmp, PS1="$")  # PS1: as bash_kernel's kernelspec sets
        info, first = bench_start(ctx, client_cls, env, kernels, spawns)
        rtt, intr, after, line1, streamed = bench_session(ctx, client_cls, env, kernels, n, 5, 2)
    ctx.term()

    def ms(xs: list[float], f: Callable = statistics.median) -> float:
        return f(xs) * 1000

    med = {
        key: {k: ms(v) for k, v in d.items()}
        for key, d in (
            ("info", info),
            ("first", first),
            ("rtt", rtt),
            ("intr", intr),
            ("after", after),
            ("line1", line1),
        )
    }
    rows = [
        (f"spawn → kernel_info_reply, median of {spawns} (ms)", med["info"], None),
        (f"spawn → first `echo hi` reply, median of {spawns} (ms)", med["first"], 0.5),
        (f"`echo hi` → reply, median of {n} (ms)", med["rtt"], 1.0),
        (f"`echo hi` → reply, p99 of {n} (ms)", {k: ms(v, p99) for k, v in rtt.items()}, None),
        ("SIGINT during `sleep 30` → reply, median of 5 (ms)", med["intr"], None),
        ("then `echo ok` → reply, median of 5 (ms)", med["after"], None),
        ("slow loop: send → first line, median of 2 (ms)", med["line1"], None),
    ]
    names = list(kernels)
    head = f"{'REPL kernels (bash)':<52}" + "".join(f"{k:>13}" for k in names)
    head += f"{'ours/bash_kernel':>18}  target / verdict"
    print(head)
    print("-" * len(head))
    failed = False
    for label, vals, limit in rows:
        ratio = vals["ours"] / vals["bash_kernel"] if vals.get("bash_kernel") else float("nan")
        verdict = ""
        if limit is not None:
            ok = ratio <= limit
            failed |= not ok
            verdict = f"≤ {limit}x bash_kernel {'PASS' if ok else 'MISS'}"
        cells = "".join(f"{vals[k]:>13.2f}" for k in names)
        print(f"{label:<52}{cells}{ratio:>17.2f}x  {verdict}")
    cells = "".join(f"{('yes' if all(streamed[k]) else 'no'):>13}" for k in names)
    ok = all(streamed["ours"])
    failed |= not ok
    print(
        f"{'slow loop: first line streamed before the end':<52}{cells}{'':>18}  "
        f"streamed {'PASS' if ok else 'MISS'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_wrapper

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spawns", type=int, default=5)
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    sys.exit(
        run(
            bench_wrapper.Client,
            bench_wrapper.kernel_env,
            bench_wrapper.p99,
            spawns=a.spawns,
            n=a.n,
        )
    )
