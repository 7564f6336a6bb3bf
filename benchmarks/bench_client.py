"""Client speed: launch → ready, and execute round trips, ours vs the peers, in one run.

1. Launch ipykernel until ready:
   - ours: ``kernel_mgmt.hl.start_kernel_async("pyimport/kernel")`` (finder, launch, client,
     ``wait_for_ready`` = kernel_info_reply + first IOPub message);
   - jupyter_client ``start_new_kernel()``;
   - floor: ipykernel's own spawn → first kernel_info_reply, seen by a bare pyzmq client.
   Target: ours ≤ 1.15x the floor.
2. Execute round trip (``execute_request`` → ``execute_reply``, code ``pass``) on one ipykernel:
   ours blocking and asyncio vs jupyter_client's ``BlockingKernelClient``, plus a bare pyzmq
   floor. Target: ours ≤ 0.8x jupyter_client.
3. The same round trip against a trivial echo server process (replies at once, no IOPub):
   this isolates what each client itself costs, which on ipykernel is hidden under the
   kernel's ~2-4 ms per execute (the bare floor there is ≈ jupyter_client).

The "over floor" column is each contender's median minus the bare client's: what the client
itself adds. On ipykernel the bare floor is already ≈ 0.9x jupyter_client (the kernel's own
~2-4 ms dominates), so the ≤ 0.8x target cannot be met by any client there; the notes under the
table print that floor and each client's cost relative to jupyter_client's.

Run: ``.venv/bin/python benchmarks/bench_client.py [--launches N] [--executes N]``.
Samples of the contenders are interleaved so machine noise hits them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import hashlib
import hmac
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings

warnings.filterwarnings("ignore")  # jupyter_client's platformdirs migration notice

TMP = tempfile.mkdtemp(prefix="bench-client-")
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(TMP, "runtime")
os.environ["IPYTHONDIR"] = os.path.join(TMP, "ipython")
os.environ.setdefault("KERNEL_MGMT_PROVIDERS", "pyimport")

import zmq  # noqa: E402


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


# -- bare pyzmq client (the floor) -------------------------------------------------------------
class Bare:
    """A hand-rolled signed DEALER client: json + HMAC, nothing else."""

    def __init__(self, info: dict, ctx: zmq.Context) -> None:
        self.key = info["key"].encode()
        self.session = uuid.uuid4().hex
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.setsockopt(zmq.RECONNECT_IVL, 10)
        self.sock.connect(f"tcp://{info['ip']}:{info['shell_port']}")

    def send(self, msg_type: str, content: dict) -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "session": self.session,
            "username": "bench",
            "date": "2024-01-01T00:00:00Z",
            "version": "5.3",
        }
        parts = [json.dumps(p).encode() for p in (header, {}, {}, content)]
        sig = hmac.new(self.key, b"".join(parts), hashlib.sha256).hexdigest().encode()
        self.sock.send_multipart([b"<IDS|MSG>", sig, *parts])
        return msg_id

    def recv_reply(self, msg_id: str, timeout_ms: int = 30000) -> dict:
        while True:
            if not self.sock.poll(timeout_ms):
                raise TimeoutError("no reply")
            frames = self.sock.recv_multipart()
            i = frames.index(b"<IDS|MSG>")
            parent = json.loads(frames[i + 3])
            if parent.get("msg_id") == msg_id:
                return json.loads(frames[i + 5])

    def close(self) -> None:
        self.sock.close()


def launch_floor(ctx: zmq.Context) -> float:
    """ipykernel's own spawn → first kernel_info_reply, with a bare client."""
    from kernel_mgmt.connection import write_connection_file

    t0 = time.perf_counter()
    path, info = write_connection_file()
    p = subprocess.Popen(
        [sys.executable, "-m", "ipykernel_launcher", "-f", path],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    c = Bare(info, ctx)
    c.recv_reply(c.send("kernel_info_request", {}))
    dt = time.perf_counter() - t0
    c.close()
    p.kill()
    p.wait()
    os.unlink(path)
    return dt


def launch_ours() -> float:
    from kernel_mgmt.hl import start_kernel_async

    async def go() -> float:
        t0 = time.perf_counter()
        km, kc = await start_kernel_async("pyimport/kernel")
        dt = time.perf_counter() - t0
        await km.kill()
        await km.cleanup()
        kc.close()
        return dt

    return asyncio.run(go())


def launch_jupyter_client() -> float:
    from jupyter_client.manager import start_new_kernel

    t0 = time.perf_counter()
    km, kc = start_new_kernel(kernel_name="python3")
    dt = time.perf_counter() - t0
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return dt


# -- execute round trips -----------------------------------------------------------------------
def time_calls(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_execute(n: int, rounds: int) -> dict[str, list[float]]:
    from jupyter_client.blocking import BlockingKernelClient as JupyterBlocking

    from kernel_mgmt.client import BlockingKernelClient, KernelClient
    from kernel_mgmt.hl import start_kernel_blocking

    _km, owner = start_kernel_blocking("pyimport/kernel")
    info = dict(owner.connection_info)
    results: dict[str, list[float]] = {
        "ours (blocking)": [],
        "ours (asyncio)": [],
        "jupyter_client BlockingKernelClient": [],
        "bare pyzmq client (floor)": [],
    }
    ctx = zmq.Context.instance()
    try:
        for _ in range(rounds):
            # ours, blocking (a second client, not the owner, so each contender starts fresh)
            kc = BlockingKernelClient(info)
            kc.wait_for_ready(30)
            time_calls(lambda kc=kc: kc.execute("pass"), 20)
            results["ours (blocking)"] += time_calls(lambda kc=kc: kc.execute("pass"), n)
            kc.close()

            # ours, asyncio
            async def run_async() -> list[float]:
                ac = KernelClient(info)
                await ac.wait_for_ready(30)
                out = []
                for i in range(n + 20):
                    t0 = time.perf_counter()
                    await ac.execute("pass")
                    if i >= 20:
                        out.append(time.perf_counter() - t0)
                ac.close()
                return out

            results["ours (asyncio)"] += asyncio.run(run_async())

            # jupyter_client
            jc = JupyterBlocking()
            jc.load_connection_info(info)
            jc.start_channels()
            jc.wait_for_ready(30)
            time_calls(lambda jc=jc: jc.execute("pass", reply=True), 20)
            results["jupyter_client BlockingKernelClient"] += time_calls(
                lambda jc=jc: jc.execute("pass", reply=True), n
            )
            jc.stop_channels()

            # the floor: kernel time plus the least a client can do
            bare = Bare(info, ctx)
            content = {
                "code": "pass",
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            }

            def bare_rt(bare=bare, content=content) -> None:
                bare.recv_reply(bare.send("execute_request", content))

            time_calls(bare_rt, 20)
            results["bare pyzmq client (floor)"] += time_calls(bare_rt, n)
            bare.close()
    finally:
        owner.shutdown_or_terminate()
        owner.close()
    return results


ECHO_SERVER = r"""
import hashlib, hmac, json, sys, zmq
key, port_file = sys.argv[1].encode(), sys.argv[2]
ctx = zmq.Context()
shell = ctx.socket(zmq.ROUTER)
port = shell.bind_to_random_port("tcp://127.0.0.1")
open(port_file, "w").write(str(port))
while True:
    frames = shell.recv_multipart()
    i = frames.index(b"<IDS|MSG>")
    header = json.loads(frames[i + 2])
    if header["msg_type"] == "shutdown_request":
        break
    reply = dict(header, msg_type=header["msg_type"].replace("_request", "_reply"))
    reply["msg_id"] = header["msg_id"] + "r"
    parts = [json.dumps(p).encode() for p in (reply, header, {}, {"status": "ok"})]
    sig = hmac.new(key, b"".join(parts), hashlib.sha256).hexdigest().encode()
    shell.send_multipart([*frames[:i], b"<IDS|MSG>", sig, *parts])
"""


def bench_echo(n: int, rounds: int) -> dict[str, list[float]]:
    """Round trips against a trivial echo server process: what each client itself costs."""
    from jupyter_client.blocking import BlockingKernelClient as JupyterBlocking

    from kernel_mgmt.client import BlockingKernelClient, KernelClient
    from kernel_mgmt.connection import allocate_ports, new_key

    key = new_key()
    port_file = os.path.join(TMP, "echo-port")
    server = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, key, port_file])
    deadline = time.monotonic() + 30

    def read_port() -> str:
        if not os.path.exists(port_file):
            return ""
        with open(port_file) as f:
            return f.read()

    while not read_port():
        if time.monotonic() > deadline:
            raise TimeoutError("echo server did not start")
        time.sleep(0.01)
    others = allocate_ports(n=4)  # never bound: only shell is used
    info = {
        "transport": "tcp",
        "ip": "127.0.0.1",
        "shell_port": int(read_port()),
        "iopub_port": others[0],
        "stdin_port": others[1],
        "control_port": others[2],
        "hb_port": others[3],
        "key": key,
        "signature_scheme": "hmac-sha256",
    }
    results: dict[str, list[float]] = {
        "ours (blocking)": [],
        "ours (asyncio)": [],
        "jupyter_client BlockingKernelClient": [],
        "bare pyzmq client (floor)": [],
    }
    ctx = zmq.Context.instance()
    try:
        for _ in range(rounds):
            kc = BlockingKernelClient(info, use_heartbeat=False)
            time_calls(lambda kc=kc: kc.execute("pass"), 50)
            results["ours (blocking)"] += time_calls(lambda kc=kc: kc.execute("pass"), n)
            kc.close()

            async def run_async() -> list[float]:
                ac = KernelClient(info, use_heartbeat=False)
                out = []
                for i in range(n + 50):
                    t0 = time.perf_counter()
                    await ac.execute("pass")
                    if i >= 50:
                        out.append(time.perf_counter() - t0)
                ac.close()
                return out

            results["ours (asyncio)"] += asyncio.run(run_async())

            jc = JupyterBlocking()
            jc.load_connection_info(info)
            jc.start_channels(iopub=False, stdin=False, hb=False, control=False)
            time_calls(lambda jc=jc: jc.execute("pass", reply=True), 50)
            results["jupyter_client BlockingKernelClient"] += time_calls(
                lambda jc=jc: jc.execute("pass", reply=True), n
            )
            jc.stop_channels()

            bare = Bare(info, ctx)

            def bare_rt(bare=bare) -> None:
                bare.recv_reply(bare.send("execute_request", {"code": "pass"}))

            time_calls(bare_rt, 50)
            results["bare pyzmq client (floor)"] += time_calls(bare_rt, n)
            bare.close()
    finally:
        b = Bare(info, ctx)
        b.send("shutdown_request", {})
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        b.close()
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--launches", type=int, default=10, help="launches per contender")
    ap.add_argument("--executes", type=int, default=60, help="executes per contender per round")
    ap.add_argument(
        "--rounds", type=int, default=10, help="rounds; contenders alternate within each round"
    )
    args = ap.parse_args()

    # Kernels inherit our stdout/stderr and print start-up notices; keep the table readable.
    sys.stdout.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        launch, execute, echo = measure(args)
    finally:
        sys.stdout.flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)
    print_table(launch, execute, echo)
    return 0


def measure(args: argparse.Namespace) -> tuple[dict, dict, dict]:
    ctx = zmq.Context.instance()
    launch: dict[str, list[float]] = {
        "ours: start_kernel_async → ready": [],
        "jupyter_client start_new_kernel": [],
        "ipykernel spawn → kernel_info_reply (floor)": [],
    }
    launch_floor(ctx)  # warm the file cache
    for _ in range(args.launches):
        launch["ours: start_kernel_async → ready"].append(launch_ours())
        launch["jupyter_client start_new_kernel"].append(launch_jupyter_client())
        launch["ipykernel spawn → kernel_info_reply (floor)"].append(launch_floor(ctx))

    execute = bench_execute(args.executes, args.rounds)
    echo = bench_echo(args.executes * 5, args.rounds)
    return launch, execute, echo


def print_table(launch: dict, execute: dict, echo: dict) -> None:
    rows = []
    floor = statistics.median(launch["ipykernel spawn → kernel_info_reply (floor)"])
    for name, s in launch.items():
        ratio = statistics.median(s) / floor
        target = "≤ 1.15x floor" if name.startswith("ours") else ""
        verdict = ("PASS" if ratio <= 1.15 else "MISS") if target else ""
        rows.append(("launch→ready", name, len(s), s, f"{ratio:.2f}x floor", "", target, verdict))
    notes = []
    for what, results in (("execute RTT", execute), ("echo RTT", echo)):
        jc = statistics.median(results["jupyter_client BlockingKernelClient"])
        floor = statistics.median(results["bare pyzmq client (floor)"])
        for name, s in results.items():
            ratio = statistics.median(s) / jc
            target = "≤ 0.8x jupyter_client" if name.startswith("ours") else ""
            verdict = ("PASS" if ratio <= 0.8 else "MISS") if target else ""
            over = (statistics.median(s) - floor) * 1e6
            rows.append(
                (what, name, len(s), s, f"{ratio:.2f}x jc", f"{over:+.0f}µs", target, verdict)
            )
        best = floor / jc
        ours_pass = any(
            statistics.median(s) / jc <= 0.8 for n, s in results.items() if n.startswith("ours")
        )
        costs = ", ".join(
            f"{label} {(statistics.median(results[name]) - floor) * 1e6:+.0f}µs"
            for label, name in (
                ("ours asyncio", "ours (asyncio)"),
                ("ours blocking", "ours (blocking)"),
                ("jupyter_client", "jupyter_client BlockingKernelClient"),
            )
        )
        notes.append(
            f"{what}: the bare pyzmq client (json + HMAC sign, no reply verification, no "
            f"IOPub reading) is {best:.2f}x jupyter_client"
            + (
                f", so ≤ 0.8x is out of any client's reach here: the kernel's own time "
                f"({floor * 1e3:.2f} ms) is the floor"
                if best > 0.8 and not ours_pass
                else ""
            )
            + f". Client cost over that floor: {costs}."
        )

    print(
        f"\nkernel_mgmt client benchmark — python {sys.version.split()[0]}, zmq {zmq.__version__}"
    )
    head = (
        f"{'what':13} {'contender':45} {'n':>5} {'median':>10} {'p99':>10}  "
        f"{'ratio':>12} {'over floor':>10}  {'target':22} verdict"
    )
    print(head)
    print("-" * len(head))
    for what, name, n, s, ratio, over, target, verdict in rows:
        med, p99 = statistics.median(s) * 1000, pct(s, 0.99) * 1000
        print(
            f"{what:13} {name:45} {n:5d} {med:8.3f}ms {p99:8.2f}ms  {ratio:>12} {over:>10}  "
            f"{target:22} {verdict}"
        )
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    sys.exit(main())
