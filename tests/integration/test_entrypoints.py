"""Real entry points in a fresh virtual environment (no system site-packages).

One venv serves the module: first ``packages/core`` alone (it imports, ``kernel-mgmt list``
prints no kernels and exits 0), then third-party packages are pip-installed into it: the seed's
``oblong`` provider as its own pyproject, the README's example provider, a package of broken
providers, and packages/provider-pyimport (the venv has no ipykernel, so it offers nothing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .test_readme_example import example_files

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(600)

OBLONG_PYPROJECT = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "kernel-mgmt-oblong"
version = "1.2.0"
dependencies = ["kernel-mgmt"]

[project.scripts]
oblong-kernel = "oblong_launch:oblong_kernel"

[tool.hatch.build.targets.wheel]
include = ["oblong_provider.py", "oblong_launch.py"]

[project.entry-points.kernel_mgmt]
# The name before the '=' is the provider id; it names a class: the finder instantiates it.
oblong = "oblong_provider:OblongKernelProvider"
"""

# The seed's example (docs chapter 7.1) as printed there, but for the import lines and one
# line Python 3.11 no longer has: `@asyncio.coroutine` above find_kernels (removed from
# asyncio; without it find_kernels is the plain generator it always behaved as).
OBLONG_MODULE = """
# oblong_provider.py
import asyncio
from kernel_mgmt.discovery import KernelProviderBase
from kernel_mgmt import KernelManager
from shutil import which
from oblong_launch import my_launch_method  # the seed leaves this helper to the reader

class OblongKernelProvider(KernelProviderBase):
    id = 'oblong'

    def find_kernels(self):
        if not which('oblong-kernel'):
            return # Check it's available

        # Two variants - for a real kernel, these could be something like
        # different conda environments.
        yield 'standard', {
            'display_name': 'Oblong (standard)',
            'language': {'name': 'oblong'},
            'argv': ['oblong-kernel'],
        }
        yield 'rounded', {
            'display_name': 'Oblong (rounded)',
            'language': {'name': 'oblong'},
            'argv': ['oblong-kernel'],
        }

    async def launch(self, name, cwd=None, launch_params=None):
        if name == 'standard':
            return await my_launch_method(cwd=cwd, launch_params=launch_params,
                                          kernel_cmd=['oblong-kernel'],
                                          extra_env={'ROUNDED': '0'})
        elif name == 'rounded':
            return await my_launch_method(cwd=cwd, launch_params=launch_params,
                                          kernel_cmd=['oblong-kernel'],
                                          extra_env={'ROUNDED': '1'})
        else:
            raise ValueError("Unknown kernel %s" % name)
"""

OBLONG_LAUNCH = """
import os

from kernel_mgmt.subproc.launcher import SubprocessKernelLauncher


async def my_launch_method(**kwargs):
    return await SubprocessKernelLauncher(**kwargs).launch()


def oblong_kernel():
    # An imaginary kernel (the seed's argv passes no connection file): it records how it
    # was started and exits.
    with open("oblong-ran.txt", "w") as f:
        f.write(os.environ.get("ROUNDED", "unset"))
"""

# Launch through the finder in the venv, as docs chapter 7.2 does.
OBLONG_LAUNCH_SCRIPT = """
import asyncio, sys
from kernel_mgmt.discovery import KernelFinder

async def main():
    kf = KernelFinder.from_entrypoints()
    connect_info, manager = await kf.launch("oblong/rounded", cwd=sys.argv[1])
    still_alive = await manager.wait(timeout=60)
    await manager.cleanup()
    print(still_alive, manager.returncode, connect_info["transport"])

asyncio.run(main())
"""

BROKEN_PYPROJECT = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "km-broken-providers"
version = "0.0.7"
dependencies = ["kernel-mgmt"]

[tool.hatch.build.targets.wheel]
include = ["km_broken.py"]

[project.entry-points.kernel_mgmt]
broken-import = "km_broken_no_such_module"
broken-raise = "km_broken:Raising"
broken-hang = "km_broken:hanging"
broken-records = "km_broken:bad_records"
clash = "km_broken:Legacy"

[project.entry-points."jupyter_kernel_mgmt.kernel_type_providers"]
legacy = "km_broken:Legacy"
"""

BROKEN_MODULE = """
import time
import types

from kernel_mgmt.discovery import KernelProviderBase
from kernel_mgmt.hookspecs import hookimpl


class Raising(KernelProviderBase):
    id = "broken-raise"

    def find_kernels(self):
        raise RuntimeError("cannot reach the cluster")


class Hanging:
    id = "broken-hang"

    @hookimpl
    def find_kernels(self):
        time.sleep(60)
        return []


hanging = Hanging()

bad_records = types.SimpleNamespace()


@hookimpl
def _bad_find_kernels():
    yield "fine", {"display_name": "Fine", "language": "x"}
    yield "no/slashes", {"display_name": "Bad", "language": "x"}
    yield "nodisplay", {"language": "x"}


class BadRecords:
    id = "broken-records"

    @hookimpl
    def find_kernels(self):
        return _bad_find_kernels()


bad_records = BadRecords()


class Legacy(KernelProviderBase):
    id = "legacy"

    def find_kernels(self):
        yield "k", {"display_name": "Legacy", "language": "x"}
"""

# A second distribution claiming the id "clash" that km-broken-providers claims too.
CLASH_PYPROJECT = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "km-clash"
version = "0.1.0"
dependencies = ["kernel-mgmt"]

[tool.hatch.build.targets.wheel]
include = ["km_clash.py"]

[project.entry-points.kernel_mgmt]
clash = "km_clash"
"""

CLASH_MODULE = """
from kernel_mgmt.hookspecs import hookimpl


@hookimpl
def find_kernels():
    yield "k", {"display_name": "Clash", "language": "x"}
"""

# The old jupyter_kernel_mgmt package registers its spec and pyimport providers under the old
# entry-point group: ours (the kernel_mgmt group) must win, not clash. A stand-in of it, whose
# provider fails loudly if it is ever imported.
OLD_PACKAGE_PYPROJECT = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "jupyter_kernel_mgmt"
version = "0.5.1"

[tool.hatch.build.targets.wheel]
include = ["jupyter_kernel_mgmt_standin.py"]

[project.entry-points."jupyter_kernel_mgmt.kernel_type_providers"]
pyimport = "jupyter_kernel_mgmt_standin:IPykernelProvider"
"""

OLD_PACKAGE_MODULE = """
raise RuntimeError("the old package's provider must not be imported: ours shadows it")
"""


def write_package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def sh(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


class Venv:
    def __init__(self, path: Path, home: Path) -> None:
        self.path = path
        self.bin = path / "bin"
        self.python = str(self.bin / "python")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KERNEL_MGMT", "JUPYTER", "VIRTUAL_ENV", "PYTHON"))
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["HOME"] = str(home)  # no user kernelspecs or user config leak in
        env["XDG_CONFIG_HOME"] = str(home / ".config")
        env["XDG_DATA_HOME"] = str(home / ".local" / "share")
        self.env = env

    def pip(self, *args: str) -> None:
        out = sh(
            self.python,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            *args,
            env=self.env,
        )
        assert out.returncode == 0, out.stdout + out.stderr

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return sh(*args, env={**self.env, **env}, timeout=120)

    def kernel_mgmt(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return self.run(str(self.bin / "kernel-mgmt"), *args, **env)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    root = tmp_path_factory.mktemp("venv")
    out = sh(sys.executable, "-m", "venv", str(root / "env"))
    assert out.returncode == 0, out.stderr
    env = Venv(root / "env", root / "home")
    env.pip(str(ROOT / "packages" / "core"))
    # What core alone does, recorded now, before full_venv installs providers into this venv:
    # test_core_alone checks it whatever order the tests run in.
    env.core_alone = {  # type: ignore[attr-defined]
        "import": env.run(
            env.python,
            "-c",
            "import kernel_mgmt, kernel_mgmt.discovery, kernel_mgmt.kernelspec, kernel_mgmt.cli",
        ),
        "import spec": env.run(env.python, "-c", "import kernel_mgmt_provider_spec"),
        "list": env.kernel_mgmt("list"),
        "list --json": env.kernel_mgmt("list", "--json"),
        "providers --json": env.kernel_mgmt("providers", "--json"),
        "discovery": env.run(env.python, "-m", "kernel_mgmt.discovery"),
    }
    return env


@pytest.fixture(scope="module")
def full_venv(venv: Venv, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    src = tmp_path_factory.mktemp("packages")
    oblong = write_package(
        src / "oblong",
        {
            "pyproject.toml": OBLONG_PYPROJECT,
            "oblong_provider.py": OBLONG_MODULE,
            "oblong_launch.py": OBLONG_LAUNCH,
        },
    )
    broken = write_package(
        src / "broken", {"pyproject.toml": BROKEN_PYPROJECT, "km_broken.py": BROKEN_MODULE}
    )
    clash = write_package(
        src / "clash", {"pyproject.toml": CLASH_PYPROJECT, "km_clash.py": CLASH_MODULE}
    )
    old = write_package(
        src / "old",
        {
            "pyproject.toml": OLD_PACKAGE_PYPROJECT,
            "jupyter_kernel_mgmt_standin.py": OLD_PACKAGE_MODULE,
        },
    )
    hello = {rel.split("/", 1)[1]: text for rel, text in example_files().items()}
    hello_dir = write_package(src / "hello", hello)
    venv.pip("hatchling")
    venv.pip(
        "--no-build-isolation",
        str(oblong),
        str(broken),
        str(clash),
        str(old),
        str(hello_dir),
        str(ROOT / "packages" / "provider-pyimport"),
    )
    config = src / "config.toml"
    # broken-hang gets its own, shorter timeout: [providers.timeouts] read from a real file.
    config.write_text("[providers]\ntimeout = 1.5\n[providers.timeouts]\nbroken-hang = 1\n")
    venv.env["KERNEL_MGMT_CONFIG"] = str(config)
    return venv


def test_core_alone(venv: Venv) -> None:
    out = venv.core_alone  # type: ignore[attr-defined]
    assert out["import"].returncode == 0, out["import"].stderr
    assert out["import spec"].returncode != 0  # no provider came along with core
    assert (out["list"].returncode, out["list"].stdout) == (0, ""), out["list"].stderr
    assert "No kernel types found" in out["list"].stderr
    assert json.loads(out["list --json"].stdout) == {"kernels": {}, "problems": []}
    providers = out["providers --json"]
    assert (providers.returncode, json.loads(providers.stdout)) == (0, [])
    assert (out["discovery"].returncode, out["discovery"].stdout) == (0, "")


def test_third_party_providers_listed(full_venv: Venv) -> None:
    out = full_venv.kernel_mgmt("list", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    kernels = data["kernels"]
    assert kernels["oblong/standard"]["display_name"] == "Oblong (standard)"
    assert kernels["oblong/rounded"]["language"] == "oblong"
    assert kernels["hello/python"]["display_name"] == "Python (hello provider)"
    assert kernels["legacy/k"]["display_name"] == "Legacy"  # the old entry-point group
    assert kernels["broken-records/fine"]["display_name"] == "Fine"
    assert not any(k.startswith("pyimport/") for k in kernels)  # no ipykernel in this venv
    problems = "\n".join(data["problems"])
    for needle in (
        "'broken-import' (km-broken-providers 0.0.7)",
        "km_broken_no_such_module",
        "'broken-raise' (km-broken-providers 0.0.7): find_kernels raised RuntimeError: "
        "cannot reach the cluster",
        "'broken-hang' (km-broken-providers 0.0.7): find_kernels took longer than 1 s",
        "'no/slashes'",
        "'nodisplay': 'display_name' must be a string",
        "duplicate provider id 'clash'",
    ):
        assert needle in problems, needle
    (dup,) = (p for p in data["problems"] if "duplicate" in p)
    assert "km-clash 0.1.0" in dup and "km-broken-providers 0.0.7" in dup
    assert not any(k.startswith("clash/") for k in kernels)  # neither claimant wins


def test_seed_oblong_provider_launches(full_venv: Venv, tmp_path: Path) -> None:
    """Docs 7.1/7.2: the seed's class launches its kernel with its extra_env, in its cwd."""
    script = tmp_path / "launch_oblong.py"
    script.write_text(textwrap.dedent(OBLONG_LAUNCH_SCRIPT))
    cwd = tmp_path / "work"
    cwd.mkdir()
    out = full_venv.run(full_venv.python, str(script), str(cwd), KERNEL_MGMT_PROVIDERS="oblong")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "0", "tcp"]
    assert (cwd / "oblong-ran.txt").read_text() == "1"  # ROUNDED=1: the 'rounded' variant


def test_providers_command(full_venv: Venv) -> None:
    out = full_venv.kernel_mgmt("providers", "--json")
    assert out.returncode == 0, out.stderr
    infos = json.loads(out.stdout)
    by = {(i["id"], i["distribution"]): i for i in infos}
    assert by[("oblong", "kernel-mgmt-oblong")]["status"] == "ok"
    assert by[("oblong", "kernel-mgmt-oblong")]["version"] == "1.2.0"
    assert by[("oblong", "kernel-mgmt-oblong")]["kernels"] == 2
    assert by[("clash", "km-clash")]["status"] == "failed"
    assert by[("clash", "km-broken-providers")]["status"] == "failed"
    assert by[("pyimport", "kernel-mgmt-provider-pyimport")]["status"] == "ok"
    assert by[("pyimport", "kernel-mgmt-provider-pyimport")]["kernels"] == 0
    # The old package's pyimport (old entry-point group) is shadowed by ours, not a clash.
    old = by[("pyimport", "jupyter_kernel_mgmt")]
    assert old["status"] == "disabled", old
    assert old["reason"].startswith("shadowed by kernel-mgmt-provider-pyimport "), old
    assert old["problems"] == [f"not loaded: {old['reason']}"]
    for pid in ("broken-import", "broken-raise", "broken-hang"):
        assert by[(pid, "km-broken-providers")]["status"] == "failed", pid
    table = full_venv.kernel_mgmt("providers").stdout
    assert "kernel-mgmt-oblong" in table and "failed" in table


def test_env_var_limits_and_table(full_venv: Venv) -> None:
    out = full_venv.kernel_mgmt("list", KERNEL_MGMT_PROVIDERS="oblong")
    assert out.returncode == 0, out.stderr
    # The broken providers were not loaded, so nothing is reported.
    assert out.stderr.strip() == ""
    rows = [line.split()[0] for line in out.stdout.splitlines()[2:]]
    assert rows == ["oblong/standard", "oblong/rounded"]
    out = full_venv.run(
        full_venv.python, "-m", "kernel_mgmt.discovery", KERNEL_MGMT_PROVIDERS="hello,oblong"
    )
    assert out.stdout.split() == ["hello/python", "oblong/standard", "oblong/rounded"]
