"""One version for all packages: each distribution's metadata and __version__ agree."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "core": ("kernel-mgmt", "kernel_mgmt"),
    "provider-spec": ("kernel-mgmt-provider-spec", "kernel_mgmt_provider_spec"),
    "provider-pyimport": ("kernel-mgmt-provider-pyimport", "kernel_mgmt_provider_pyimport"),
    "provider-conda": ("kernel-mgmt-provider-conda", "kernel_mgmt_provider_conda"),
    "wrapper-kernel": ("wrapper-kernel", "wrapper_kernel"),
    "jupyter-bridge": ("kernel-mgmt-jupyter", "kernel_mgmt_jupyter"),
}


def test_all_packages_share_one_version() -> None:
    versions = {}
    for folder, (dist, module) in PACKAGES.items():
        mod_version = importlib.import_module(module).__version__
        assert md.version(dist) == mod_version, f"{dist}: installed metadata is stale"
        versions[folder] = mod_version
    assert len(set(versions.values())) == 1, versions


@pytest.mark.parametrize("folder", [f for f in PACKAGES if f != "core"])
def test_siblings_pin_a_compatible_core(folder: str) -> None:
    core_version = importlib.import_module("kernel_mgmt").__version__
    major, minor = (int(x) for x in core_version.split(".")[:2])
    meta = tomllib.loads((ROOT / "packages" / folder / "pyproject.toml").read_text())
    deps = meta["project"]["dependencies"]
    pin = next(d for d in deps if d.startswith("kernel-mgmt"))
    assert pin == f"kernel-mgmt>={major}.{minor},<{major}.{minor + 1}", pin


@pytest.mark.parametrize("folder", list(PACKAGES))
def test_each_package_is_typed_and_documented(folder: str) -> None:
    base = ROOT / "packages" / folder
    module = PACKAGES[folder][1]
    assert (base / "src" / module / "py.typed").is_file()
    readme = (base / "README.md").read_text()
    assert len(readme.splitlines()) > 3, f"{folder}/README.md is only a title"
