"""Installing the package enables the bridge for jupyter_server; status says so."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_server.serverapp import ServerApp
from traitlets.config import Config

from kernel_mgmt_jupyter import KernelFinderSpecManager
from kernel_mgmt_jupyter.serverext import _link_jupyter_server_extension

from .conftest import World

BIN = Path(sys.executable).parent
CONFIG_FILE = Path(sys.prefix) / "etc/jupyter/jupyter_server_config.d/kernel_mgmt_jupyter.json"


@pytest.fixture(autouse=True)
def _fresh_singletons() -> Iterator[None]:
    """Linking makes jupyter_server's GatewayClient singleton (as the server would): reset it."""
    from jupyter_server.gateway.gateway_client import GatewayClient

    GatewayClient.clear_instance()
    yield
    GatewayClient.clear_instance()
    ServerApp.clear_instance()


def test_the_install_put_the_config_file_in_place() -> None:
    # setup.sh installs the package editable: hatchling's editable wheel carries shared-data.
    assert CONFIG_FILE.is_file()
    config = json.loads(CONFIG_FILE.read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"kernel_mgmt_jupyter": True}}}


def test_linking_the_extension_sets_the_spec_manager_class() -> None:
    app = ServerApp()
    _link_jupyter_server_extension(app)
    assert app.kernel_spec_manager_class is KernelFinderSpecManager


def test_an_explicitly_configured_spec_manager_wins() -> None:
    config = Config()
    config.ServerApp.kernel_spec_manager_class = "jupyter_client.kernelspec.KernelSpecManager"
    app = ServerApp(config=config)
    _link_jupyter_server_extension(app)
    assert app.kernel_spec_manager_class.__name__ == "KernelSpecManager"


def test_a_server_initialised_here_uses_the_bridge(world: World) -> None:
    app = ServerApp()
    try:
        app.initialize(argv=["--ServerApp.ip=127.0.0.1", "--allow-root", "--no-browser"])
        assert isinstance(app.kernel_spec_manager, KernelFinderSpecManager)
        assert app.kernel_manager.kernel_spec_manager is app.kernel_spec_manager
    finally:
        if getattr(app, "http_server", None) is not None:
            app.http_server.stop()
        ServerApp.clear_instance()


def _status(world: World) -> dict:
    proc = subprocess.run(
        [str(BIN / "kernel-mgmt-jupyter"), "status", "--json"],
        env=world.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_status_says_active_and_how_it_was_turned_off(world: World) -> None:
    status = _status(world)
    assert status["provisioner_registered"] is True
    assert status["jupyter_server"]["active"] is True
    assert status["jupyter_server"]["extension_enabled"] is True
    text = subprocess.run(
        [str(BIN / "kernel-mgmt-jupyter"), "status"],
        env=world.env(),
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "bridge active" in text
    providers = {p["id"]: p for p in status["providers"]}
    assert providers["spec"]["status"] == "ok" and providers["spec"]["kernels"] >= 1
    assert "provider spec: ok," in text
    # Turning it off for this user, as the README says.
    (world.config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"kernel_mgmt_jupyter": False}}})
    )
    off = _status(world)["jupyter_server"]
    assert off["active"] is False
    assert "disabled" in off["reason"]


def test_status_names_an_explicit_spec_manager(world: World) -> None:
    (world.config / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "ServerApp": {
                    "kernel_spec_manager_class": "jupyter_client.kernelspec.KernelSpecManager"
                }
            }
        )
    )
    off = _status(world)["jupyter_server"]
    assert off["active"] is False
    assert "jupyter_client.kernelspec.KernelSpecManager" in off["reason"]


@pytest.mark.parametrize("module", ["kernel_mgmt", "kernel_mgmt.discovery", "kernel_mgmt.cli"])
def test_core_never_imports_the_bridge(module: str) -> None:
    code = f"import sys, {module}; print('kernel_mgmt_jupyter' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_gateway_mode_keeps_the_gateways_kernelspecs() -> None:
    config = Config()
    config.GatewayClient.url = "http://127.0.0.1:9"  # never contacted: linking only
    app = ServerApp(config=config)
    _link_jupyter_server_extension(app)
    assert "kernel_spec_manager_class" not in app._trait_values
