"""CurveZMQ in conda environments: the same rule as the spec and pyimport providers.

A kernelspec in an environment gets keys when it declares ``metadata.supported_encryption``;
the Python kernel the provider makes for an environment with ipykernel but no Python
kernelspec declares it when that ipykernel is >= 7.3, read from the conda package record or
pip's ``.dist-info`` folder name (no interpreter is run). Launches use real ipykernel on a
real ``venv`` interpreter dressed as a conda environment.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

import kernel_mgmt_provider_conda as provider

from .conftest import _site_packages, make_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
PY = "python-3.11.7-h0_0"


def test_declared_for_new_ipykernel_records(conda: Any) -> None:
    conda.make_root()
    conda.env("new", packages=(PY, "ipykernel-7.4.0-pyh0_0"))
    conda.env("edge", packages=(PY, "ipykernel-7.3.0-pyh0_0"))
    conda.env("old", packages=(PY, "ipykernel-6.29.5-pyh3099207_0"))
    kernels = conda.kernels()
    meta = {name: attrs["metadata"] for name, attrs in kernels.items()}
    assert meta["new-python3"]["supported_encryption"] == ["curve"]
    assert meta["edge-python3"]["supported_encryption"] == ["curve"]
    assert "supported_encryption" not in meta["old-python3"]
    assert all(m["debugger"] is True for m in meta.values())


def test_declared_for_pip_installed_ipykernel(conda: Any) -> None:
    conda.make_root()
    for name, dist_info in (("pipnew", "ipykernel-7.4.0.dist-info"), ("pipbare", None)):
        prefix = conda.env(name, packages=(PY,))
        site = prefix / "lib" / "python3.11" / "site-packages"
        (site / "ipykernel").mkdir(parents=True)
        (site / "ipykernel" / "__init__.py").write_text("")
        if dist_info:
            (site / dist_info).mkdir()
    meta = {name: attrs["metadata"] for name, attrs in conda.kernels().items()}
    assert meta["pipnew-python3"]["supported_encryption"] == ["curve"]
    assert "supported_encryption" not in meta["pipbare-python3"]  # version unknown: no keys


def test_kernelspecs_keep_their_own_declaration(conda: Any) -> None:
    conda.make_root()
    declared = conda.spec("Py", metadata={"supported_encryption": ["curve"]})
    conda.env("specs", kernels={"py": declared, "plain": conda.spec("Plain", "text")})
    meta = {name: attrs["metadata"] for name, attrs in conda.kernels().items()}
    assert meta["specs-py"]["supported_encryption"] == ["curve"]
    assert "supported_encryption" not in meta["specs-plain"]


@pytest.fixture(scope="module")
def curve_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real venv interpreters (ipykernel importable) dressed as conda environments
    without a Python kernelspec: one recorded as ipykernel 7.4.0, one as 6.29.5."""
    root = tmp_path_factory.mktemp("curveroot")
    make_env(root)
    base_python = getattr(sys, "_base_executable", sys.executable)
    version = "{}.{}.{}".format(*sys.version_info[:3])
    for name, ipk in (("enc", "ipykernel-7.4.0-pyh0_0"), ("plain", "ipykernel-6.29.5-pyh0_0")):
        prefix = root / "envs" / name
        subprocess.run(
            [base_python, "-m", "venv", "--without-pip", "--system-site-packages", str(prefix)],
            check=True,
            timeout=120,
        )
        site = _site_packages(prefix)
        site.mkdir(parents=True, exist_ok=True)
        (site / "_kernel_mgmt_test_parent.pth").write_text(sysconfig.get_path("purelib") + "\n")
        make_env(prefix, packages=(f"python-{version}-h0_0_cpython", ipk))
    return root


@pytest.mark.parametrize(("env", "keyed"), [("enc", True), ("plain", False)])
def test_launch_follows_the_record(
    conda: Any,
    curve_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    env: str,
    keyed: bool,
) -> None:
    from jupyter_client.blocking.client import BlockingKernelClient

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("MAMBA_ROOT_PREFIX", str(curve_root))
    monkeypatch.setenv("PATH", f"/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin")
    info, manager = asyncio.run(provider.launch(f"{env}-python3", None, None))
    client = BlockingKernelClient()
    try:
        assert ("curve_secretkey" in info) == keyed
        client.load_connection_info(info)
        client.start_channels(hb=False)
        client.wait_for_ready(timeout=60)
        out: list[str] = []
        reply = client.execute_interactive(
            "import sys; print(sys.prefix)",
            output_hook=lambda m: out.append(m["content"].get("text", "")),
            timeout=60,
        )
        assert reply["content"]["status"] == "ok"
        assert "".join(out).strip() == str(curve_root / "envs" / env)
    finally:
        client.stop_channels()
        asyncio.run(manager.kill())
        asyncio.run(manager.cleanup())
