"""Jupyter Server with the bridge, beside stock jupyter_server and nb_conda_kernels, one run.

One private world for every server: 500 kernelspec folders in JUPYTER_DATA_DIR, a conda root
with 50 environments in ``<root>/envs`` (``conda-meta/history`` and a python3 kernelspec each,
listed in ``~/.conda/environments.txt`` as conda writes it), and a stand-in ``conda`` at
``<root>/bin/conda`` (``CONDA_EXE``) that answers ``conda info --json`` at once with those
envs — nb_conda_kernels runs exactly that (``envs``, ``conda_prefix``, ``envs_dirs`` are what
it reads), so what is measured is its own overhead, not conda's. Our conda provider spawns
nothing; it takes the root from ``CONDA_EXE`` and reads the files.

Servers (``jupyter server`` subprocesses on 127.0.0.1, private HOME / JUPYTER_* dirs):

- stock: ``--ServerApp.kernel_spec_manager_class=jupyter_client.kernelspec.KernelSpecManager``
  (that option turns the installed bridge off): lists the 500 folders.
- ours: the installed package as it is (the bridge): the 500 folders plus the 50 envs.
- nb_conda_kernels: ``--ServerApp.kernel_spec_manager_class=`` its ``CondaKernelSpecManager``
  (the bridge stays out when a class is configured): the 500 plus the 50 envs. Only when
  nb_conda_kernels is importable by this Python (it is not on PyPI here: ``pip install`` it from
  a checkout of github.com/anaconda/nb_conda_kernels for the run, or give ``--nb-conda-src``,
  which is put on that server's PYTHONPATH); otherwise its rows say "not installed".

Measured, interleaved round by round so machine noise hits every side alike:

- ``GET /api/kernelspecs`` on a warm server over a kept-alive connection (median, p99).
  Targets: ours ≤ 1.0x stock (while listing 50 more), ours ≤ 0.5x nb_conda_kernels.
- server start → first ``/api/kernelspecs`` response (a new process each round).
- kernel start → ready through the server: ``POST /api/kernels`` then the channels
  websocket's ``kernel_info_reply``, the same ipykernel kernelspec on stock and ours (ours
  launches it through the ``kernel-mgmt`` provisioner). Target ours ≤ 1.1x stock.

Run: ``.venv/bin/python benchmarks/bench_jupyter.py [--rounds N] [--starts N] [--kernels N]``
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

STOCK = "--ServerApp.kernel_spec_manager_class=jupyter_client.kernelspec.KernelSpecManager"
NB_CONDA = "--ServerApp.kernel_spec_manager_class=nb_conda_kernels.CondaKernelSpecManager"
KERNEL = "benchpy"


def kernel_json(display: str, argv0: str = "python") -> str:
    argv = [argv0, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    return json.dumps({"argv": argv, "display_name": display, "language": "python"})


def build(top: str, n_specs: int, n_envs: int) -> dict[str, str]:
    """The world; returns the servers' environment."""
    home, data = os.path.join(top, "home"), os.path.join(top, "data")
    root = os.path.join(top, "miniconda3")
    for i in range(n_specs):
        folder = os.path.join(data, "kernels", f"spec{i:03d}")
        os.makedirs(folder)
        with open(os.path.join(folder, "kernel.json"), "w") as f:
            f.write(kernel_json(f"Spec {i:03d}"))
    folder = os.path.join(data, "kernels", KERNEL)
    os.makedirs(folder)
    with open(os.path.join(folder, "kernel.json"), "w") as f:
        f.write(kernel_json("bench ipykernel", sys.executable))
    prefixes = [root] + [os.path.join(root, "envs", f"env{i:02d}") for i in range(n_envs)]
    for prefix in prefixes:
        os.makedirs(os.path.join(prefix, "conda-meta"))
        with open(os.path.join(prefix, "conda-meta", "history"), "w") as f:
            f.write("==> 2024-01-01 00:00:00 <==\n")
    # env00 is a real interpreter (a venv importing this Python's ipykernel through a .pth),
    # for the conda kernel start row; the others are folders (enough to be listed).
    real = prefixes[1]
    subprocess.run(
        [getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", real],
        check=True,
        timeout=120,
    )
    site = sysconfig.get_path("purelib", vars={"base": real, "platbase": real})
    with open(os.path.join(site, "_bench_parent.pth"), "w") as f:
        f.write(sysconfig.get_path("purelib") + "\n")
    for prefix in prefixes[1:]:
        folder = os.path.join(prefix, "share", "jupyter", "kernels", "python3")
        os.makedirs(folder)
        with open(os.path.join(folder, "kernel.json"), "w") as f:
            f.write(kernel_json("Python 3 (ipykernel)"))
    os.makedirs(os.path.join(home, ".conda"))
    with open(os.path.join(home, ".conda", "environments.txt"), "w") as f:
        f.writelines(p + "\n" for p in prefixes)
    info = {"envs": prefixes, "conda_prefix": root, "envs_dirs": [os.path.join(root, "envs")]}
    with open(os.path.join(root, "info.json"), "w") as f:
        json.dump(info, f)
    conda = os.path.join(root, "bin", "conda")
    os.makedirs(os.path.dirname(conda))
    with open(conda, "w") as f:  # `conda info --json`, instantly
        f.write(f"#!/bin/sh\nexec cat {os.path.join(root, 'info.json')}\n")
    os.chmod(conda, 0o755)
    with open(os.path.join(root, "bin", "activate"), "w") as f:
        # What nb_conda_kernels' runner sources before exec-ing the kernel (`. activate ENV`):
        # the least any activation does, so the runner's own cost is what is measured.
        f.write('CONDA_PREFIX="$1"; PATH="$1/bin:$PATH"; export CONDA_PREFIX PATH\n')
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER", "CONDA", "MAMBA_", "KERNEL_MGMT", "XDG_"))
        and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(
        HOME=home,
        JUPYTER_DATA_DIR=data,
        JUPYTER_CONFIG_DIR=os.path.join(top, "config"),
        JUPYTER_RUNTIME_DIR=os.path.join(top, "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        IPYTHONDIR=os.path.join(top, "ipython"),
        CONDA_EXE=conda,
        KERNEL_MGMT_CONDA_CACHE_DIR=os.path.join(top, "conda-cache"),
    )
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One jupyter server subprocess."""

    def __init__(self, name: str, env: dict[str, str], args: list[str], top: str) -> None:
        self.name, self.env, self.args, self.top = name, env, args, top
        self.token = uuid.uuid4().hex
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.conn: http.client.HTTPConnection | None = None

    def start(self, timeout: float = 120) -> float:
        """Start; return seconds from spawn to the first /api/kernelspecs response."""
        self.port = free_port()
        argv = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1"]
        argv += [f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0"]
        argv += [f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.top}"]
        argv += ["--allow-root"] if os.geteuid() == 0 else []
        log = open(os.path.join(self.top, f"{self.name}.log"), "ab")  # noqa: SIM115
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            argv + self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited; see {self.name}.log")
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{self.port}/api/kernelspecs",
                    headers={"Authorization": f"token {self.token}"},
                )
                with urllib.request.urlopen(req, timeout=10) as r:
                    r.read()
                    return time.perf_counter() - t0
            except OSError:
                time.sleep(0.005)
        raise RuntimeError(f"{self.name} server did not answer in {timeout:g} s")

    def request(self, method: str, path: str, body: object = None) -> object:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        data = None if body is None else json.dumps(body)
        headers = {"Authorization": f"token {self.token}", "Content-Type": "application/json"}
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{self.name}: {method} {path} -> {resp.status} {raw[:300]!r}")
        return json.loads(raw) if raw else None

    def kernel_ready(self, name: str = KERNEL) -> tuple[float, str]:
        """POST /api/kernels → kernel_info_reply on the channels websocket; (seconds, id)."""
        from websockets.sync.client import connect

        t0 = time.perf_counter()
        kernel_id = self.request("POST", "/api/kernels", {"name": name})["id"]  # type: ignore[index]
        url = f"ws://127.0.0.1:{self.port}/api/kernels/{kernel_id}/channels"
        with connect(
            url, additional_headers={"Authorization": f"token {self.token}"}, open_timeout=120
        ) as ws:
            msg_id = uuid.uuid4().hex
            header = {"msg_id": msg_id, "msg_type": "kernel_info_request", "username": "b"}
            header |= {"session": "bench", "date": datetime.now(UTC).isoformat()}
            msg = {"header": header | {"version": "5.3"}, "parent_header": {}, "metadata": {}}
            ws.send(json.dumps(msg | {"content": {}, "channel": "shell", "buffers": []}))
            while True:
                reply = json.loads(ws.recv(timeout=120))
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    break
        return time.perf_counter() - t0, kernel_id

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            if self.conn is not None:
                self.conn.close()
                self.conn = None
            for k in self.request("GET", "/api/kernels") or []:  # type: ignore[union-attr]
                self.request("DELETE", f"/api/kernels/{k['id']}")
            self.request("POST", "/api/shutdown")
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None


@contextlib.contextmanager
def running(servers: list[Server]) -> Iterator[None]:
    try:
        for s in servers:
            s.start()
        yield
    finally:
        for s in servers:
            s.stop()


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def conda_name(server: Server) -> str:
    """The name our listing gives conda/env00-python3 (found by its type id)."""
    specs = server.request("GET", "/api/kernelspecs")["kernelspecs"]  # type: ignore[index]
    for name, model in specs.items():
        config = model["spec"].get("metadata", {}).get("kernel_provisioner", {}).get("config", {})
        if config.get("type_id") == "conda/env00-python3":
            return name
    raise RuntimeError("conda/env00-python3 is not listed by our server")


def nb_conda_available(env: dict[str, str]) -> bool:
    r = subprocess.run(
        [sys.executable, "-c", "import nb_conda_kernels.manager"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    return r.returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=60, help="kernelspecs requests per server")
    ap.add_argument("--starts", type=int, default=5, help="server starts per server kind")
    ap.add_argument("--kernels", type=int, default=10, help="kernel starts per server kind")
    ap.add_argument("--specs", type=int, default=500, help="kernelspec folders (500)")
    ap.add_argument("--envs", type=int, default=50, help="conda environments (50)")
    ap.add_argument("--nb-conda-src", help="a checkout of nb_conda_kernels to put on PYTHONPATH")
    args = ap.parse_args()
    if importlib.util.find_spec("kernel_mgmt_jupyter") is None:
        print("kernel_mgmt_jupyter is not installed: run scripts/setup.sh")
        return 2

    top = tempfile.mkdtemp(prefix="bench-jupyter-")
    try:
        env = build(top, args.specs, args.envs)
        nb_env = dict(env)
        if args.nb_conda_src:
            nb_env["PYTHONPATH"] = os.path.abspath(args.nb_conda_src)
        kinds = {"stock": (env, [STOCK]), "ours": (env, [])}
        if nb_conda_available(nb_env):
            kinds["nb_conda_kernels"] = (nb_env, [NB_CONDA])
        servers = {k: Server(k, e, a, top) for k, (e, a) in kinds.items()}
        times: dict[str, list[float]] = {}

        with running(list(servers.values())):
            counts = {}
            for name, s in servers.items():  # warm-up, and what each one lists
                for _ in range(3):
                    specs = s.request("GET", "/api/kernelspecs")
                counts[name] = len(specs["kernelspecs"])  # type: ignore[index]
            for _ in range(args.rounds):
                for name, s in servers.items():
                    t = timed(lambda s=s: s.request("GET", "/api/kernelspecs"))
                    times.setdefault(f"list {name}", []).append(t)
            for _ in range(args.kernels + 1):
                for name in ("stock", "ours"):
                    s = servers[name]
                    t, kid = s.kernel_ready()
                    s.request("DELETE", f"/api/kernels/{kid}")
                    times.setdefault(f"kernel {name}", []).append(t)
            # A conda environment's kernel: ours (conda/env00-python3) vs nb_conda_kernels'
            # conda-env-env00-py (its runner, the stand-in activate, then the kernel).
            conda_names = {"ours": conda_name(servers["ours"])}
            if "nb_conda_kernels" in servers:
                conda_names["nb_conda_kernels"] = "conda-env-env00-py"
            for _ in range(args.kernels + 1):
                for name, kernel in conda_names.items():
                    s = servers[name]
                    t, kid = s.kernel_ready(kernel)
                    s.request("DELETE", f"/api/kernels/{kid}")
                    times.setdefault(f"conda {name}", []).append(t)
            for key in ("kernel stock", "kernel ours", *(f"conda {n}" for n in conda_names)):
                del times[key][0]  # the first start pays for imports
        for _ in range(args.starts):
            for name, s in servers.items():
                times.setdefault(f"start {name}", []).append(s.start())
                s.stop()
    finally:
        shutil.rmtree(top, ignore_errors=True)

    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    p99 = {k: pct(v, 0.99) * 1000 for k, v in times.items()}
    listed = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(
        f"\nJupyter Server: {args.specs} kernelspecs + {args.envs} conda envs; kernelspecs "
        f"listed: {listed}. Python {sys.version.split()[0]}, {args.rounds} list rounds, "
        f"{args.starts} server starts, {args.kernels} kernel starts per server, interleaved\n"
    )
    rows = [
        # (what, ours, peer, target ratio)
        ("GET /api/kernelspecs", "list ours", "list stock", 1.0),
        ("GET /api/kernelspecs", "list ours", "list nb_conda_kernels", 0.5),
        ("server start -> 1st kernelspecs", "start ours", "start stock", None),
        ("server start -> 1st kernelspecs", "start ours", "start nb_conda_kernels", None),
        ("kernel start -> kernel_info_reply", "kernel ours", "kernel stock", 1.1),
        ("conda env kernel start -> reply", "conda ours", "conda nb_conda_kernels", None),
    ]
    head = (
        f"{'what':<34}{'ours ms':>9}{'p99':>8}  {'peer':<17}{'peer ms':>9}{'p99':>8}"
        f"{'ratio':>8}{'target':>9}  ok"
    )
    print(head)
    print("-" * len(head))
    ok = True
    for what, ours, peer, target in rows:
        label = peer.split(" ", 1)[1]
        if peer not in med:
            print(f"{what:<34}{med[ours]:>9.1f}{p99[ours]:>8.1f}  {label:<17}  not installed")
            continue
        ratio = med[ours] / med[peer]
        passed = target is None or ratio <= target
        ok &= passed
        goal = f"<= {target:g}x" if target is not None else "-"
        mark = ("yes" if passed else "NO") if target is not None else ""
        print(
            f"{what:<34}{med[ours]:>9.1f}{p99[ours]:>8.1f}  {label:<17}{med[peer]:>9.1f}"
            f"{p99[peer]:>8.1f}{ratio:>7.2f}x{goal:>9}  {mark}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
