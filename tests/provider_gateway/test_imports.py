"""Without a gateway configured, `kernel-mgmt list` pays nothing for this provider."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("httpx", "websockets", "zmq", "asyncio", "ssl", "dataclasses", "jsonschema")


def _imports(env: dict[str, str]) -> tuple[set[str], subprocess.CompletedProcess]:
    # No config file at all (reading one imports jsonschema, which is core's cost, not ours).
    env = {k: v for k, v in env.items() if k != "KERNEL_MGMT_CONFIG"}
    env["XDG_CONFIG_HOME"] = os.path.join(env["HOME"], ".config")
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kernel_mgmt", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    return imported, out


def test_list_without_gateway_imports_nothing_heavy(local_env: Path) -> None:
    env = {**os.environ, "KERNEL_MGMT_PROVIDERS": "gateway"}
    imported, out = _imports(env)
    assert out.returncode == 0, out.stderr
    # The provider did load (importtime may not print the package line itself when the
    # import runs in the finder's worker thread; its submodule's line is there).
    assert "kernel_mgmt_provider_gateway._version" in imported
    ours = {m for m in imported if m.startswith("kernel_mgmt_provider_gateway.")}
    assert ours == {"kernel_mgmt_provider_gateway._version"}, ours
    for heavy in HEAVY:
        assert heavy not in imported, heavy


def test_list_with_gateway_loads_http_only(kg, local_env: Path) -> None:
    """With a URL, listing needs httpx, but never the websocket or ZeroMQ stack."""
    env = {**os.environ, "KERNEL_MGMT_PROVIDERS": "gateway"}
    imported, out = _imports(env)
    assert out.returncode == 0, out.stderr
    assert "gateway/python3" in out.stdout
    assert "httpx" in imported
    for heavy in ("websockets", "zmq", "kernel_mgmt_provider_gateway._bridge"):
        assert heavy not in imported, heavy
