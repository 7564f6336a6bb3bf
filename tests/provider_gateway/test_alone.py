"""The gateway provider installs and works alone: core plus this package in a fresh venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Gateway

ROOT = Path(__file__).resolve().parents[2]


def _sh(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("alone")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KERNEL_MGMT", "JUPYTER", "VIRTUAL_ENV", "PYTHON"))
    }
    env["HOME"] = str(root / "home")
    env["XDG_CONFIG_HOME"] = str(root / "home" / ".config")
    out = _sh(sys.executable, "-m", "venv", str(root / "env"), env=env)
    assert out.returncode == 0, out.stderr
    py = str(root / "env" / "bin" / "python")
    out = _sh(
        py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
        str(ROOT / "packages" / "core"), str(ROOT / "packages" / "provider-gateway"),
        env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return root / "env" / "bin", env


def test_installs_alone_and_runs_a_gateway_kernel(
    alone: tuple[Path, dict[str, str]], kg: Gateway, tmp_path: Path
) -> None:
    bin_dir, env = alone
    env = {
        **env,
        "KERNEL_MGMT_GATEWAY_URL": kg.url,
        "KERNEL_MGMT_GATEWAY_TOKEN": kg.token,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    out = _sh(str(bin_dir / "kernel-mgmt"), "providers", "--json", env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    (info,) = json.loads(out.stdout)
    assert (info["id"], info["status"], info["kernels"]) == ("gateway", "ok", 2)
    run = [str(bin_dir / "kernel-mgmt"), "run", "gateway/python3", "-c", "print(6 * 7)"]
    out = _sh(*run, env=env, timeout=120)
    assert (out.returncode, out.stdout) == (0, "42\n"), out.stderr
