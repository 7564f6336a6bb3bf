"""The README's "Kernels on a cluster" section: its config is valid, its commands work."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from kernel_mgmt.config import load_config
from kernel_mgmt_provider_gateway._config import parse_config

from .conftest import Gateway

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def _block(marker: str, lang: str) -> str:
    match = re.search(rf"<!-- {re.escape(marker)} -->\s*```{lang}\n(.*?)```", README, re.S)
    assert match, f"README.md has no {lang} block after <!-- {marker} -->"
    return match.group(1)


def test_config_example_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(_block("readme-gateway-config", "toml"))
    section = load_config([str(path)])["gateway"]
    cfg = parse_config(section, {"EG_AUTH_TOKEN": "t0k"})
    assert cfg.base_url == "https://eg.example.org:8888"
    assert cfg.websocket_url == "wss://eg.example.org:8888"
    assert cfg.token == "t0k" and cfg.launch_timeout == 120
    assert cfg.kernel_env == ("KERNEL_USERNAME", "KERNEL_NAMESPACE")


def test_cli_example_runs(gateway: Gateway) -> None:
    lines = _block("readme-gateway-cli", "console").splitlines()
    commands = [line[2:] for line in lines if line.startswith("$ ")]
    expected = [line for line in lines if line and not line.startswith("$ ")]
    assert commands[-1].startswith("kernel-mgmt run gateway/python3")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    listing = subprocess.run(
        shlex.split(commands[0]), capture_output=True, text=True, timeout=60, env=env
    )
    assert listing.returncode == 0 and "gateway/python3" in listing.stdout
    out = subprocess.run(
        shlex.split(commands[-1]), capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == expected


@pytest.mark.parametrize("key", ["url", "token_env", "timeout", "launch_timeout", "kernel_env"])
def test_package_readme_documents_every_key(key: str) -> None:
    text = (ROOT / "packages" / "provider-gateway" / "README.md").read_text()
    assert f"`{key}`" in text
