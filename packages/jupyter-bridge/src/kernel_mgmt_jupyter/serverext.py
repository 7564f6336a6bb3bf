"""The jupyter_server extension that puts :class:`KernelFinderSpecManager` in charge.

jupyter_server reads ``jupyter_server_config.d/*.json`` only for ``jpserver_extensions``
(traitlets loads no ``.d`` folders for other settings), so the installed config file enables
this extension, and linking it — which happens before the server makes its kernel spec
manager — sets ``ServerApp.kernel_spec_manager_class``. A class configured explicitly (a
``--ServerApp.kernel_spec_manager_class`` option or config file) and gateway mode win:
the bridge then stays out and says so in the log.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CLASS_NAME", "is_active_for"]

CLASS_NAME = "kernel_mgmt_jupyter.KernelFinderSpecManager"


def _configured_elsewhere(serverapp: Any) -> str | None:
    """Why the bridge must not replace the spec manager, or None."""
    configured = serverapp.config.get("ServerApp", {}).get("kernel_spec_manager_class")
    if configured is not None:
        if isinstance(configured, str):
            full = configured
        else:
            full = f"{getattr(configured, '__module__', '')}.{getattr(configured, '__name__', '')}"
        if full not in (CLASS_NAME, "kernel_mgmt_jupyter.manager.KernelFinderSpecManager"):
            return f"ServerApp.kernel_spec_manager_class is configured as {configured!r}"
        return None
    gateway = getattr(serverapp, "gateway_config", None)
    if gateway is None:
        try:  # the same singleton the server makes a moment later
            from jupyter_server.gateway.gateway_client import GatewayClient

            gateway = GatewayClient.instance(parent=serverapp)
        except Exception:  # an older jupyter_server: no gateway to defer to
            gateway = None
    if gateway is not None and getattr(gateway, "gateway_enabled", False):
        return "the server uses a gateway's kernelspecs (--gateway-url)"
    return None


def is_active_for(serverapp: Any) -> bool:
    """True when linking the extension made (or would make) the bridge's spec manager serve."""
    return _configured_elsewhere(serverapp) is None


def _link_jupyter_server_extension(serverapp: Any) -> None:
    why = _configured_elsewhere(serverapp)
    if why is not None:
        serverapp.log.info("kernel_mgmt_jupyter | not active: %s", why)
        return
    from .manager import KernelFinderSpecManager

    serverapp.kernel_spec_manager_class = KernelFinderSpecManager


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from .manager import KernelFinderSpecManager

    if isinstance(getattr(serverapp, "kernel_spec_manager", None), KernelFinderSpecManager):
        serverapp.log.info(
            "kernel_mgmt_jupyter | active: kernelspecs come from every kernel_mgmt provider"
        )
