"""Is the bridge active for this Python's jupyter_server? (``kernel-mgmt-jupyter status``)"""

from __future__ import annotations

import sys
from typing import Any

from . import __version__

__all__ = ["bridge_status"]

EXTENSION = "kernel_mgmt_jupyter"


def _provisioner_registered() -> bool:
    from importlib.metadata import entry_points

    return any(
        ep.name == "kernel-mgmt" for ep in entry_points(group="jupyter_client.kernel_provisioners")
    )


def _server_view() -> dict[str, Any]:
    """What a ``jupyter server`` started now from this Python would do about the bridge."""
    try:
        from jupyter_server.extension.config import ExtensionConfigManager
        from jupyter_server.serverapp import ServerApp
    except ImportError:
        return {"installed": False, "active": False, "reason": "jupyter_server is not installed"}
    import jupyter_server

    app = ServerApp()
    paths = list(app.config_file_paths)
    app.load_config_file()  # jupyter_server_config.{json,py} of every config dir, as it starts
    enabled = ExtensionConfigManager(read_config_path=paths).get_jpserver_extensions()
    configured = app.config.get("ServerApp", {})
    enabled.update(dict(configured.get("jpserver_extensions", {}) or {}))
    view: dict[str, Any] = {
        "installed": True,
        "version": jupyter_server.__version__,
        "config_paths": paths,
        "extension_enabled": bool(enabled.get(EXTENSION, False)),
    }
    from .serverext import CLASS_NAME

    ksm = configured.get("kernel_spec_manager_class")
    if ksm is not None and str(ksm) not in (
        CLASS_NAME,
        f"{EXTENSION}.manager.KernelFinderSpecManager",
    ):
        view.update(active=False, reason=f"ServerApp.kernel_spec_manager_class is set to {ksm!r}")
    elif not view["extension_enabled"]:
        view.update(
            active=False,
            reason=f"the jupyter_server extension {EXTENSION} is disabled "
            f"(ServerApp.jpserver_extensions sets {EXTENSION!r} to false in one of "
            f"{', '.join(paths)})",
        )
    else:
        view.update(active=True, reason="")
    return view


def _providers() -> list[dict[str, Any]]:
    """Each provider as the spec manager sees it: id, status, kernel count, reason."""
    from .finders import Finders

    finders = Finders(wait=60.0)
    try:
        listing = finders.list_sync()
        late = set(listing.late)
        rows = []
        for info in finders.providers():
            row = {k: v for k, v in info.to_dict().items() if k in ("id", "status", "reason")}
            row["kernels"] = info.kernels
            if info.id in late:
                row.update(status="late", reason="find_kernels still running after 60 s")
            rows.append(row)
        return rows
    finally:
        finders.close()


def bridge_status() -> dict[str, Any]:
    """The bridge's version, its provisioner's registration, the server's view, providers."""
    return {
        "version": __version__,
        "provisioner_registered": _provisioner_registered(),
        "python": sys.executable,
        "jupyter_server": _server_view(),
        "providers": _providers(),
    }
