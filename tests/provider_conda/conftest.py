"""Fixtures for the conda provider: isolated HOME/CONDA_* state and real conda-style envs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kernel_mgmt_provider_conda as provider
from kernel_mgmt_provider_conda import _condarc, _discover

_CONDA_VARS = (
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
    "_CE_M",
    "_CE_CONDA",
)


class Conda:
    """A private conda world: a HOME, a root prefix, a cache dir and env builders."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        self.root = tmp / "miniconda3"
        self.cache = tmp / "cache"
        self.system = tmp / "etc-conda"
        self.monkeypatch = monkeypatch
        self.home.mkdir()
        (self.home / ".conda").mkdir()
        self.system.mkdir()

    def make_root(self, **kwargs: Any) -> Path:
        """A base environment at ``self.root``, announced through MAMBA_ROOT_PREFIX."""
        make_env(self.root, **kwargs)
        (self.root / "envs").mkdir(exist_ok=True)
        self.monkeypatch.setenv("MAMBA_ROOT_PREFIX", str(self.root))
        return self.root

    def env(self, name: str, **kwargs: Any) -> Path:
        """An environment in ``<root>/envs`` (the root folder need not be announced)."""
        return make_env(self.root / "envs" / name, **kwargs)

    def environments_txt(self, *lines: str | Path) -> Path:
        path = self.home / ".conda" / "environments.txt"
        path.write_text("".join(f"{line}\n" for line in lines))
        return path

    def condarc(self, text: str, path: Path | None = None) -> Path:
        path = path or self.home / ".condarc"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    @staticmethod
    def make_env(prefix: Path, **kwargs: Any) -> Path:
        """See :func:`make_env`."""
        return make_env(prefix, **kwargs)

    @staticmethod
    def spec(display_name: str = "Python 3", language: str = "python", **extra: Any) -> dict:
        """See :func:`spec`."""
        return spec(display_name, language, **extra)

    def kernels(self, **config: Any) -> dict[str, dict[str, Any]]:
        """Load ``config`` as the [conda] section and return ``{name: attributes}``."""
        provider.load_config({"conda": config})
        return dict(provider.find_kernels())


def make_env(
    prefix: Path,
    *,
    kernels: dict[str, dict[str, Any] | str] | None = None,
    packages: tuple[str, ...] = (),
    env_vars: dict[str, dict[str, str]] | None = None,
    state: dict[str, Any] | None = None,
    activate: dict[str, str] | None = None,
) -> Path:
    """A conda-style environment folder: conda-meta/history plus what is asked for.

    ``kernels`` maps a kernelspec folder name to its kernel.json (a dict, or raw text);
    ``packages`` are conda package record names like ``"ipykernel-6.29.5-pyh_0"``.
    """
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "history").write_text("==> 2024-01-01 00:00:00 <==\n# cmd: conda create\n")
    for record in packages:
        name, version, build = record.rsplit("-", 2)
        (meta / f"{record}.json").write_text(
            json.dumps({"name": name, "version": version, "build": build})
        )
    for kname, spec in (kernels or {}).items():
        folder = prefix / "share" / "jupyter" / "kernels" / kname
        folder.mkdir(parents=True, exist_ok=True)
        text = spec if isinstance(spec, str) else json.dumps(spec)
        (folder / "kernel.json").write_text(text)
    for fname, values in (env_vars or {}).items():
        folder = prefix / "etc" / "conda" / "env_vars.d"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / fname).write_text(json.dumps(values))
    if state is not None:
        (meta / "state").write_text(json.dumps(state))
    for fname, script in (activate or {}).items():
        folder = prefix / "etc" / "conda" / "activate.d"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / fname).write_text(script)
    return prefix


def spec(display_name: str = "Python 3", language: str = "python", **extra: Any) -> dict[str, Any]:
    """A kernel.json for an ipykernel-style kernel."""
    return {
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name,
        "language": language,
        **extra,
    }


@pytest.fixture
def conda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Conda]:
    """Isolate every input of discovery: HOME, CONDA_* vars, system condarc dirs, caches."""
    for var in _CONDA_VARS:
        monkeypatch.delenv(var, raising=False)
    world = Conda(tmp_path, monkeypatch)
    monkeypatch.setenv("HOME", str(world.home))
    monkeypatch.setenv("KERNEL_MGMT_CONDA_CACHE_DIR", str(world.cache))
    monkeypatch.setattr(_condarc, "SYSTEM_DIRS", (str(world.system),))
    _discover.clear_memory()
    provider.load_config({})
    yield world
    _discover.clear_memory()
    provider.load_config({})


def _site_packages(prefix: Path) -> Path:
    rel = sysconfig.get_path("purelib", vars={"base": "X"}).split("X", 1)[1].lstrip(os.sep)
    return prefix / rel


@pytest.fixture(scope="session")
def real_env_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root prefix holding one real Python environment (``envs/realenv``), made once.

    ``python -m venv`` gives a real interpreter whose ``sys.prefix`` is the env; a .pth file
    lets it import this test environment's ipykernel. Around it: conda-meta records, a
    python3 kernelspec with argv ``python`` (as conda's ipykernel package ships it),
    env_vars.d and state variables.
    """
    root = tmp_path_factory.mktemp("condaroot")
    make_env(root)
    prefix = root / "envs" / "realenv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run(
        [base_python, "-m", "venv", "--without-pip", "--system-site-packages", str(prefix)],
        check=True,
        timeout=120,
    )
    site = _site_packages(prefix)
    site.mkdir(parents=True, exist_ok=True)
    ours = sysconfig.get_path("purelib")
    (site / "_kernel_mgmt_test_parent.pth").write_text(ours + "\n")
    version = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    make_env(
        prefix,
        kernels={"python3": spec()},
        packages=(f"python-{version}-h0_0_cpython", "ipykernel-7.4.0-pyh0_0"),
        env_vars={"mypkg.json": {"MYPKG_HOME": "from-package", "SHARED": "package"}},
        state={"env_vars": {"SHARED": "state", "PROJECT_MODE": "dev"}},
    )
    return root
