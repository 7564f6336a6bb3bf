"""Kernel discovery with 500 kernelspecs: kernel_mgmt against jupyter_client, side by side.

Three comparisons, measured in one run and interleaved round by round so that machine noise
hits both sides alike (the 500 specs live in a private JUPYTER_PATH; JUPYTER_DATA_DIR,
JUPYTER_CONFIG_DIR and IPYTHONDIR point at empty private folders; PYTHONDONTWRITEBYTECODE is
unset so that both sides run from .pyc files, as after any ordinary install):

1. CLI: ``kernel-mgmt list`` (``KERNEL_MGMT_PROVIDERS=spec``) vs ``jupyter kernelspec list``;
   target ≤ 0.35x. ``kernel-mgmt list (all)``, with every installed provider loaded as a user
   runs it: target ≤ 0.25x ``jupyter kernelspec list``, and ≤ 3x the floor: a bare
   interpreter that lists the same kernels folder and reads and parses each of the same
   kernel.json files (``python -c FLOOR_CODE``), the least any CLI listing them can do.
2. In-process: ``list(finder.find_kernels())`` on a ``KernelFinder`` holding the spec provider
   vs ``KernelSpecManager().get_all_specs()``; target ≤ 0.3x.
3. Import: ``python -c "import kernel_mgmt"`` vs ``python -c "import jupyter_client"``;
   target ≤ 0.5x.

Run: ``.venv/bin/python benchmarks/bench_discovery.py [--rounds N] [--specs N]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

BIN = os.path.dirname(sys.executable)


def make_specs(root: str, n: int) -> None:
    kernels = os.path.join(root, "path", "kernels")
    for i in range(n):
        d = os.path.join(kernels, f"bench-{i:04d}")
        os.makedirs(d)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Bench kernel {i}",
            "language": "python",
            "metadata": {"debugger": True},
        }
        with open(os.path.join(d, "kernel.json"), "w") as f:
            json.dump(spec, f)


#: The floor of a CLI listing: start the interpreter, read and parse every kernel.json.
FLOOR_CODE = """\
import json, os
root = os.path.join(os.environ["JUPYTER_PATH"], "kernels")
specs = {}
for name in os.listdir(root):
    try:
        with open(os.path.join(root, name, "kernel.json"), "rb") as f:
            specs[name] = json.loads(f.read())
    except OSError:
        pass
print(len(specs))
"""


def isolated_env(root: str) -> dict[str, str]:
    env = dict(os.environ)
    # Bytecode as in any normal install: jupyter_client's site-packages has its .pyc files,
    # kernel_mgmt's editable sources get theirs on the warm-up run (gitignored __pycache__).
    for key in (
        "JUPYTER_PREFER_ENV_PATH",
        "JUPYTER_PLATFORM_DIRS",
        "KERNEL_MGMT_CONFIG",
        "PYTHONDONTWRITEBYTECODE",
    ):
        env.pop(key, None)
    env.update(
        JUPYTER_PATH=os.path.join(root, "path"),
        JUPYTER_DATA_DIR=os.path.join(root, "data"),
        JUPYTER_CONFIG_DIR=os.path.join(root, "config"),
        IPYTHONDIR=os.path.join(root, "ipython"),
        KERNEL_MGMT_PROVIDERS="spec",
    )
    return env


def time_cmd(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def time_call(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25, help="interleaved rounds (default 25)")
    parser.add_argument("--specs", type=int, default=500, help="kernelspecs (default 500)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-discovery-") as root:
        make_specs(root, args.specs)
        env = isolated_env(root)
        py = sys.executable
        km_cmd = [os.path.join(BIN, "kernel-mgmt"), "list"]
        jup_cmd = [os.path.join(BIN, "jupyter"), "kernelspec", "list"]

        # Sanity: both CLIs see the same kernels before anything is timed.
        out = subprocess.run([*km_cmd, "--json"], env=env, capture_output=True, check=True)
        km_names = {k.split("/", 1)[1] for k in json.loads(out.stdout)["kernels"]}
        out = subprocess.run([*jup_cmd, "--json"], env=env, capture_output=True, check=True)
        jup_names = set(json.loads(out.stdout)["kernelspecs"])
        missing = jup_names - km_names
        if missing:
            print(f"warning: kernel-mgmt misses {sorted(missing)[:5]}", file=sys.stderr)

        # In-process: the environment must be set in this process too.
        os.environ.update({k: env[k] for k in ("JUPYTER_PATH", "JUPYTER_DATA_DIR")})
        os.environ.update(
            JUPYTER_CONFIG_DIR=env["JUPYTER_CONFIG_DIR"], IPYTHONDIR=env["IPYTHONDIR"]
        )
        from jupyter_client.kernelspec import KernelSpecManager

        from kernel_mgmt.discovery import KernelFinder
        from kernel_mgmt_provider_spec import KernelSpecProvider

        finder = KernelFinder([KernelSpecProvider()])
        assert len(list(finder.find_kernels())) >= args.specs
        assert len(KernelSpecManager().get_all_specs()) >= args.specs
        ksm = KernelSpecManager()

        # As a user runs it: every installed provider (spec, pyimport, conda, ...), for info.
        env_all = {k: v for k, v in env.items() if k != "KERNEL_MGMT_PROVIDERS"}
        cases: dict[str, Callable[[], float]] = {
            "kernel-mgmt list": lambda: time_cmd(km_cmd, env),
            "kernel-mgmt list (all)": lambda: time_cmd(km_cmd, env_all),
            "jupyter kernelspec list": lambda: time_cmd(jup_cmd, env),
            "floor: python + read specs": lambda: time_cmd([py, "-c", FLOOR_CODE], env),
            "finder.find_kernels()": lambda: time_call(lambda: list(finder.find_kernels())),
            "KernelSpecManager().get_all_specs()": lambda: time_call(
                lambda: KernelSpecManager().get_all_specs()
            ),
            "ksm.get_all_specs() (reused)": lambda: time_call(ksm.get_all_specs),
            "import kernel_mgmt": lambda: time_cmd([py, "-c", "import kernel_mgmt"], env),
            "import jupyter_client": lambda: time_cmd([py, "-c", "import jupyter_client"], env),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for fn in cases.values():  # warm-up: page cache, .pyc files
            fn()
        for _ in range(args.rounds):
            for name, fn in cases.items():
                times[name].append(fn())

    med = {name: statistics.median(v) * 1000 for name, v in times.items()}
    p90 = {name: pct(v, 0.9) * 1000 for name, v in times.items()}
    low = {name: min(v) * 1000 for name, v in times.items()}
    rows = [
        ("kernel-mgmt list", "jupyter kernelspec list", 0.35),
        ("kernel-mgmt list (all)", "jupyter kernelspec list", 0.25),
        ("kernel-mgmt list (all)", "floor: python + read specs", 3.0),
        ("kernel-mgmt list", "floor: python + read specs", None),
        ("finder.find_kernels()", "KernelSpecManager().get_all_specs()", 0.30),
        ("finder.find_kernels()", "ksm.get_all_specs() (reused)", None),
        ("import kernel_mgmt", "import jupyter_client", 0.50),
    ]
    print(
        f"\nkernel discovery, {args.specs} kernelspecs, {args.rounds} interleaved rounds, "
        f"Python {sys.version.split()[0]}; CLI runs with KERNEL_MGMT_PROVIDERS=spec "
        "except (all)\n"
    )
    header = (
        f"{'ours':<22}{'median (p90)':>15}  {'peer':<36}{'median (p90)':>16}"
        f"{'ratio':>7}{'min ratio':>10}{'target':>9}"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for ours, peer, target in rows:
        ratio = med[ours] / med[peer]
        verdict = ""
        if target is not None:
            verdict = f"≤{target:g} {'✓' if ratio <= target else '✗'}"
            ok = ok and ratio <= target
        print(
            f"{ours:<22}{med[ours]:>7.1f} ({p90[ours]:>5.1f}){'':2}{peer:<36}"
            f"{med[peer]:>8.1f} ({p90[peer]:>5.1f}){ratio:>7.2f}{low[ours] / low[peer]:>10.2f}"
            f"{verdict:>9}"
        )
    print("\nms; ratio = ours / peer of medians (min ratio: of the fastest runs). Targets from")
    print("BENCHMARKS.md apply to the median ratio.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
