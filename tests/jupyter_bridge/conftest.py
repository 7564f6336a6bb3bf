"""Fixtures for the Jupyter bridge: a private Jupyter world, kernelspecs and conda-style envs.

Every test gets its own HOME, JUPYTER_* dirs, conda variables and caches, and fresh shared
finders (the spec manager and provisioner share one set per process). Conda environments are
real: ``python -m venv`` gives an interpreter whose ``sys.prefix`` is the env, and a ``.pth``
file lets it import this test environment's ipykernel (as ``tests/provider_conda`` does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import kernel_mgmt_jupyter.finders as bridge_finders
from kernel_mgmt_provider_conda import _condarc, _discover

_CLEARED = (
    "CONDA_EXE",
    "CONDA_PYTHON_EXE",
    "CONDA_PREFIX",
    "CONDA_SHLVL",
    "CONDA_DEFAULT_ENV",
    "CONDA_PROMPT_MODIFIER",
    "CONDA_ENVS_PATH",
    "CONDA_ENVS_DIRS",
    "CONDARC",
    "MAMBA_ROOT_PREFIX",
    "MAMBA_EXE",
    "XDG_CONFIG_HOME",
    "KERNEL_MGMT_CONFIG",
    "KERNEL_MGMT_PROVIDERS",
    "JUPYTER_PATH",
    "JUPYTER_CONFIG_PATH",
    "JUPYTER_DEFAULT_PROVISIONER_NAME",
    "KERNEL_GREETING",
)

PYTHON_ARGV = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def ipykernel_spec(display_name: str = "Python 3", **extra: Any) -> dict[str, Any]:
    """A kernel.json running ipykernel in this interpreter."""
    return {"argv": list(PYTHON_ARGV), "display_name": display_name, "language": "python", **extra}


def write_spec(kernels_dir: Path, name: str, spec: dict[str, Any]) -> Path:
    """Write ``<kernels_dir>/<name>/kernel.json``."""
    folder = kernels_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps(spec))
    return folder


def make_conda_env(prefix: Path, kernels: dict[str, dict[str, Any]] | None = None) -> Path:
    """A conda-style environment folder (``conda-meta/history``) with kernelspecs."""
    (prefix / "conda-meta").mkdir(parents=True, exist_ok=True)
    (prefix / "conda-meta" / "history").write_text("==> 2024-01-01 00:00:00 <==\n")
    for name, spec in (kernels or {}).items():
        write_spec(prefix / "share" / "jupyter" / "kernels", name, spec)
    return prefix


def _site_packages(prefix: Path) -> Path:
    rel = sysconfig.get_path("purelib", vars={"base": "X"}).split("X", 1)[1].lstrip(os.sep)
    return prefix / rel


def make_real_env(prefix: Path) -> Path:
    """A conda-style env holding a real Python (a venv) that can import our ipykernel."""
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run(
        [base_python, "-m", "venv", "--without-pip", "--system-site-packages", str(prefix)],
        check=True,
        timeout=120,
    )
    site = _site_packages(prefix)
    site.mkdir(parents=True, exist_ok=True)
    (site / "_kernel_mgmt_test_parent.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # As conda's ipykernel package ships it: argv[0] "python" means the env's own.
    argv = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    return make_conda_env(
        prefix, {"python3": {"argv": argv, "display_name": "Python 3", "language": "python"}}
    )


@pytest.fixture(scope="session")
def conda_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conda root (a base env without kernels) with one real env, ``envs/ml``, made once."""
    root = tmp_path_factory.mktemp("condaroot") / "miniconda3"
    make_conda_env(root)
    make_real_env(root / "envs" / "ml")
    return root


class World:
    """The private Jupyter world of one test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        self.jupyter_path = tmp / "jupyter-path"
        self.kernels = self.jupyter_path / "kernels"
        self.data = tmp / "data"
        self.runtime = tmp / "runtime"
        self.config = tmp / "config"
        for d in (self.home, self.kernels, self.data, self.runtime, self.config):
            d.mkdir(parents=True, exist_ok=True)
        (self.home / ".conda").mkdir()

    def env(self) -> dict[str, str]:
        """The environment for a subprocess (the ``world`` fixture has isolated os.environ)."""
        env = dict(os.environ)
        env.update(self.variables())
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def variables(self) -> dict[str, str]:
        return {
            "HOME": str(self.home),
            "JUPYTER_PATH": str(self.jupyter_path),
            "JUPYTER_DATA_DIR": str(self.data),
            "JUPYTER_RUNTIME_DIR": str(self.runtime),
            "JUPYTER_CONFIG_DIR": str(self.config),
            "KERNEL_MGMT_CONDA_CACHE_DIR": str(self.tmp / "conda-cache"),
            "XDG_CONFIG_HOME": str(self.tmp / "xdg"),
        }

    def connection_files(self) -> list[str]:
        return sorted(p.name for p in self.runtime.glob("kernel-*"))


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Isolate HOME, JUPYTER_*, conda and kernel_mgmt variables; fresh shared finders."""
    for var in _CLEARED:
        monkeypatch.delenv(var, raising=False)
    w = World(tmp_path)
    for key, value in w.variables().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(_condarc, "SYSTEM_DIRS", (str(tmp_path / "etc-conda"),))
    _discover.clear_memory()
    bridge_finders.reset_shared()
    yield w
    bridge_finders.reset_shared()
    _discover.clear_memory()


@pytest.fixture
def with_conda(world: World, conda_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Announce ``conda_root`` (its ``envs/ml`` env) to the conda provider; returns the env."""
    monkeypatch.setenv("MAMBA_ROOT_PREFIX", str(conda_root))
    return conda_root / "envs" / "ml"


def pid_gone(pid: int) -> bool:
    """True when no process ``pid`` is running (zombies count as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def execute(client: Any, code: str, timeout: float = 60) -> tuple[dict[str, Any], str]:
    """Run ``code`` on a jupyter_client async client.

    :returns: ``(execute_reply content, stdout and the text of any execute_result)``.
    """
    out: list[str] = []

    def on_output(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "execute_result":
            out.append(msg["content"]["data"]["text/plain"] + "\n")

    reply = await client.execute_interactive(code, timeout=timeout, output_hook=on_output)
    return reply["content"], "".join(out)
