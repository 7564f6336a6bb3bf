"""Conda discovery over 50 environments, beside the spec provider on 50 kernelspecs.

Everything lives in a private temporary world: a conda root with N environments in
``<root>/envs`` (each with ``conda-meta/history``, a few package records and a ``python3``
kernelspec), an ``environments.txt`` listing them as conda writes it, a ``.condarc``; and a
folder of N kernelspecs for the spec provider. HOME, CONDA_* and the cache dir point there.
File times are set 10 s into the past, as for environments that exist before the listing
(a result read right after a change is trusted for one second only: see ``_cache.py``).

Measured, interleaved round by round (in a shuffled order each round, seeded, so that no
case always follows the same other case) so machine noise hits all sides alike:

- conda cold: no cache at all, as a new process with no disk cache: nothing in memory,
  nothing pending, and a disk cache folder that never holds a file. The timed call is the
  full scan, building the in-memory cache and scheduling the disk cache file (written at
  interpreter exit, as in any process). Targets: ≤ 30 ms, and ≤ 2x the spec provider.
- conda disk: a new process' first call (memory cleared, a valid disk cache file).
- conda warm: memory cache, revalidated by stat-ing what the scan read. Target ≤ 5 ms.
- spec provider: ``find_kernels()`` on the N kernelspecs (it has no cache: always cold).
- syscall floor: the reading any scan of N environments must do, in a bare loop: stat
  ``conda-meta/history``, list ``share/jupyter/kernels``, read each kernel.json (no caching,
  no names, no cache bookkeeping). Shows how much of the gap to the spec provider (which
  reads N kernelspecs from one folder) is the layout itself. "floor + watch" adds the two
  signatures per environment that any cache invalidated by file changes must record (the
  kernels folder's and kernel.json's ``stat``; the provider takes the latter with ``fstat``).
- jupyter_client ``KernelSpecManager().get_all_specs()`` on the same N kernelspecs (reference).
- finder rows: the same through ``KernelFinder([provider]).find_kernels()``, as an application
  lists kernels (worker thread, record checks) — conda cold/warm against the spec provider.

No setup writes or deletes files: file I/O in a setup right before a timed call (the spec
provider's setup has none) measurably slows the call after it (about 10 % here), and a
fixed case order made the cold call always follow the heaviest case.

Run: ``.venv/bin/python benchmarks/bench_conda.py [--rounds N] [--envs N]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

CONDA_VARS = (
    "CONDA_EXE",
    "CONDA_PYTHON_EXE",
    "CONDA_PREFIX",
    "CONDA_SHLVL",
    "CONDA_ENVS_PATH",
    "CONDA_ENVS_DIRS",
    "CONDARC",
    "MAMBA_EXE",
    "XDG_CONFIG_HOME",
)


def spec(name: str) -> dict[str, object]:
    return {
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 ({name})",
        "language": "python",
        "metadata": {"debugger": True},
    }


def build(top: str, n: int) -> tuple[str, str]:
    """Make the conda world and the kernelspec folder; return (root, kernels_dir)."""
    root = os.path.join(top, "miniconda3")
    home = os.path.join(top, "home")
    prefixes = [root] + [os.path.join(root, "envs", f"env{i:03d}") for i in range(n)]
    for prefix in prefixes:
        meta = os.path.join(prefix, "conda-meta")
        os.makedirs(meta)
        with open(os.path.join(meta, "history"), "w") as f:
            f.write("==> 2024-01-01 00:00:00 <==\n")
        pkgs = ["python-3.11.7-h0_0", "ipykernel-6.29.5-pyh0_0", "numpy-1.26.4-py311_0"]
        for pkg in pkgs if prefix != root else pkgs[:1]:  # base: no kernels
            with open(os.path.join(meta, pkg + ".json"), "w") as f:
                json.dump({"name": pkg.rsplit("-", 2)[0]}, f)
    for prefix in prefixes[1:]:
        kdir = os.path.join(prefix, "share", "jupyter", "kernels", "python3")
        os.makedirs(kdir)
        with open(os.path.join(kdir, "kernel.json"), "w") as f:
            json.dump(spec(os.path.basename(prefix)), f)
    os.makedirs(os.path.join(home, ".conda"))
    with open(os.path.join(home, ".conda", "environments.txt"), "w") as f:
        f.writelines(p + "\n" for p in prefixes)
    with open(os.path.join(home, ".condarc"), "w") as f:
        f.write("channels:\n  - conda-forge\nenvs_dirs:\n  - ~/.conda/envs\n")
    kernels = os.path.join(top, "jupyter", "kernels")
    for i in range(n):
        kdir = os.path.join(kernels, f"spec{i:03d}")
        os.makedirs(kdir)
        with open(os.path.join(kdir, "kernel.json"), "w") as f:
            json.dump(spec(f"spec{i:03d}"), f)
    past = time.time() - 10
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (past, past))
    return root, kernels


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="interleaved rounds (200)")
    parser.add_argument("--envs", type=int, default=50, help="environments / kernelspecs (50)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-conda-") as top:
        root, kernels_dir = build(top, args.envs)
        for var in CONDA_VARS:
            os.environ.pop(var, None)
        disk_dir = os.path.join(top, "cache")  # holds the valid disk cache file
        cold_dir = os.path.join(top, "cache-cold")  # never holds one
        os.environ.update(
            HOME=os.path.join(top, "home"),
            MAMBA_ROOT_PREFIX=root,
            KERNEL_MGMT_CONDA_CACHE_DIR=disk_dir,
            JUPYTER_PATH=os.path.join(top, "jupyter"),
            JUPYTER_DATA_DIR=os.path.join(top, "data"),
            JUPYTER_CONFIG_DIR=os.path.join(top, "config"),
            IPYTHONDIR=os.path.join(top, "ipython"),
        )
        os.makedirs(os.path.join(top, "etc-conda"))

        from jupyter_client.kernelspec import KernelSpecManager

        import kernel_mgmt_provider_conda as conda
        from kernel_mgmt_provider_conda import _condarc, _discover
        from kernel_mgmt_provider_spec import KernelSpecProvider

        _condarc.SYSTEM_DIRS = (os.path.join(top, "etc-conda"),)  # not the machine's /etc
        conda.load_config({"conda": {}})
        spec_provider = KernelSpecProvider([kernels_dir])

        def forget(cache_dir: str) -> None:
            """A new process: nothing in memory, no disk cache file pending (no file I/O)."""
            _discover._pending.clear()
            _discover.clear_memory()
            os.environ["KERNEL_MGMT_CONDA_CACHE_DIR"] = cache_dir

        def no_cache() -> None:
            forget(cold_dir)

        def new_process() -> None:
            forget(disk_dir)

        def find_conda() -> object:
            return list(conda.find_kernels())

        # The disk cache file, written once; then check that each setup gives what it says.
        new_process()
        found = find_conda()
        _discover.flush()
        assert len(found) == args.envs, f"conda found {len(found)} kernels, not {args.envs}"
        assert len(os.listdir(disk_dir)) == 1
        real_scan = _discover.scan
        scans: list[int] = []
        _discover.scan = lambda *a: scans.append(1) or real_scan(*a)  # type: ignore[assignment]
        for setup, expected in ((no_cache, 1), (new_process, 0), (find_conda, 0)):
            setup()
            del scans[:]
            assert find_conda() == found and len(scans) == expected, (setup, scans)
        _discover.scan = real_scan
        assert len(list(spec_provider.find_kernels())) == args.envs
        assert len(KernelSpecManager().get_all_specs()) >= args.envs

        from kernel_mgmt.kernelspec import read_kernel_spec

        env_prefixes = [os.path.join(root, "envs", e) for e in os.listdir(root + "/envs")]

        def floor() -> None:
            """The reading any scan must do: is it an env, its kernels, each kernel.json."""
            for prefix in env_prefixes:
                os.stat(prefix + "/conda-meta/history")
                kernels = prefix + "/share/jupyter/kernels"
                for name in os.listdir(kernels):
                    read_kernel_spec(kernels + "/" + name)

        def watched_floor() -> None:
            """The floor plus the two signatures a cache must record per environment."""
            for prefix in env_prefixes:
                os.stat(prefix + "/conda-meta/history")
                kernels = prefix + "/share/jupyter/kernels"
                os.stat(kernels)  # kernelspecs added or removed
                for name in os.listdir(kernels):
                    read_kernel_spec(kernels + "/" + name)
                    os.stat(kernels + "/" + name + "/kernel.json")  # kernel.json edited

        from kernel_mgmt.discovery import KernelFinder

        conda_finder = KernelFinder([conda], config={"conda": {}})
        spec_finder = KernelFinder([spec_provider])

        # name: (untimed setup, timed call)
        cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
            "conda cold": (no_cache, find_conda),
            "conda disk": (new_process, find_conda),
            "conda warm": (find_conda, find_conda),
            "spec provider": (lambda: None, lambda: list(spec_provider.find_kernels())),
            "finder conda cold": (no_cache, lambda: list(conda_finder.find_kernels())),
            "finder conda warm": (find_conda, lambda: list(conda_finder.find_kernels())),
            "finder spec": (lambda: None, lambda: list(spec_finder.find_kernels())),
            "syscall floor": (lambda: None, floor),
            "floor + watch": (lambda: None, watched_floor),
            "KernelSpecManager": (lambda: None, lambda: KernelSpecManager().get_all_specs()),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for setup, fn in cases.values():  # warm-up: page cache, imports
            setup()
            fn()
        order = list(cases.items())
        shuffle = random.Random(5).shuffle
        for _ in range(args.rounds):
            shuffle(order)
            for name, (setup, fn) in order:
                setup()
                times[name].append(timed(fn))
        forget(disk_dir)
        assert not os.path.exists(cold_dir), "a cold call found a disk cache"

    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    p99 = {k: pct(v, 0.99) * 1000 for k, v in times.items()}
    rows: list[tuple[str, str | None, float | None, float | None]] = [
        # (ours, peer, ratio target, absolute target ms)
        ("conda cold", "spec provider", 2.0, 30.0),
        ("conda cold", "syscall floor", None, None),
        ("syscall floor", "spec provider", None, None),
        ("floor + watch", "spec provider", None, None),
        ("conda cold", "KernelSpecManager", None, None),
        ("conda disk", "spec provider", None, None),
        ("conda warm", "spec provider", None, 5.0),
        ("finder conda cold", "finder spec", 2.0, 30.0),
        ("finder conda warm", "finder spec", None, 5.0),
    ]
    print(
        f"\nconda discovery: {args.envs} envs (each with a kernelspec) vs {args.envs} "
        f"kernelspecs, {args.rounds} interleaved rounds, Python {sys.version.split()[0]}\n"
    )
    header = (
        f"{'ours':<18}{'median ms':>10}{'p99 ms':>9}  {'peer':<18}{'median ms':>10}"
        f"{'p99 ms':>9}{'ratio':>8}{'target':>22}  ok"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for ours, peer, ratio_target, abs_target in rows:
        ratio = med[ours] / med[peer] if peer else float("nan")
        goals = []
        passed = True
        if ratio_target is not None:
            goals.append(f"<= {ratio_target:g}x")
            passed &= ratio <= ratio_target
        if abs_target is not None:
            goals.append(f"<= {abs_target:g} ms")
            passed &= med[ours] <= abs_target
        goal = ", ".join(goals) or "-"
        mark = ("yes" if passed else "NO") if goals else ""
        ok &= passed
        print(
            f"{ours:<18}{med[ours]:>10.2f}{p99[ours]:>9.2f}  {peer or '':<18}"
            f"{med[peer]:>10.2f}{p99[peer]:>9.2f}{ratio:>7.2f}x{goal:>22}  {mark}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
