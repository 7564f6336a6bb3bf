"""The gateway provider: kernels of a Jupyter Enterprise Gateway or Kernel Gateway.

Each kernelspec the gateway offers is a kernel type ``gateway/<name>``. Launching one starts
the kernel on the gateway (``POST /api/kernels``) and a local bridge — five ZeroMQ sockets on
127.0.0.1 with their own key, relaying to the kernel's channels websocket — so that every
client of kernel_mgmt or jupyter_client talks to it as to a local kernel. The bridge is a
CurveZMQ server under kernel_mgmt's ``transport_encryption`` policy, as our wrapper kernels.

This module imports only the standard library and ``kernel_mgmt.hookspecs``: every
``kernel-mgmt list`` imports every provider, and without a gateway URL nothing more is
imported (httpx, websockets and zmq load inside the hooks that need them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kernel_mgmt import hookimpl
from kernel_mgmt.discovery import report_note

from ._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from ._config import GatewayConfig

__all__ = ["NOT_CONFIGURED", "__version__", "find_kernels", "launch", "load_config"]

#: What ``kernel-mgmt providers`` says while no gateway URL is set.
NOT_CONFIGURED = (
    "no gateway configured, so no kernel types: set url in the [gateway] table of the "
    "kernel_mgmt config, or KERNEL_MGMT_GATEWAY_URL (JUPYTER_GATEWAY_URL also works)"
)

_section: Mapping[str, Any] | None = None
_settings_value: GatewayConfig | None = None


def _settings() -> GatewayConfig:
    """The parsed settings; environment overrides read at the first use after load_config."""
    global _settings_value
    if _settings_value is None:
        from ._config import parse_config

        _settings_value = parse_config(_section or {})
    return _settings_value


def _url_configured() -> bool:
    """Whether any source names a URL, without importing the config module when none does."""
    import os

    if _settings_value is not None:
        return bool(_settings_value.url)
    if _section and _section.get("url"):
        return True
    # The names of _config.ENV_URL and ENV_JUPYTER_URL, spelled out: importing _config (and
    # dataclasses) would cost every `kernel-mgmt list` without a gateway.
    return bool(os.environ.get("KERNEL_MGMT_GATEWAY_URL") or os.environ.get("JUPYTER_GATEWAY_URL"))


@hookimpl
def load_config(config: Mapping[str, Any]) -> None:
    """Read the ``[gateway]`` table (keys documented in the package README).

    :raises kernel_mgmt.config.ConfigError: naming ``gateway.<key>`` for a bad value.
    """
    global _section, _settings_value
    _section = config.get("gateway", {})
    _settings_value = None
    if _section or _url_configured():
        _settings()  # check now: a bad value is reported when the finder loads us


@hookimpl
def find_kernels() -> list[tuple[str, dict[str, Any]]]:
    """The gateway's kernelspecs as ``(name, attributes)``; nothing when no URL is set.

    :raises kernel_mgmt_provider_gateway.GatewayError: the gateway is unreachable, slow,
        refuses the token or is not a gateway (the message names its URL and the status).
    """
    if not _url_configured():
        # Not a problem (nothing to log on every listing): a note for `kernel-mgmt providers`.
        report_note(NOT_CONFIGURED)
        return []
    from ._discover import find_kernelspecs

    settings = _settings()
    records = find_kernelspecs(settings)
    report_note(f"gateway {settings.base_url} (from {settings.url_source})")
    return records


@hookimpl
async def launch(
    name: str, cwd: str | None, launch_params: dict[str, Any] | None, kernel_id: str | None = None
) -> tuple[dict[str, Any], Any]:
    """Start kernelspec ``name`` on the gateway; return its bridge's connection info and manager."""
    from ._manager import launch_kernel

    settings = _settings()
    if not settings.url:
        from kernel_mgmt.discovery import NoSuchKernel

        raise NoSuchKernel(f"gateway/{name}", NOT_CONFIGURED)
    return await launch_kernel(settings, name, cwd, launch_params, kernel_id)


def __getattr__(name: str) -> Any:
    """``GatewayError``, ``GatewayLaunchError``, ``GatewayKernelManager``, loaded on first use."""
    if name == "GatewayError":
        from ._rest import GatewayError

        return GatewayError
    if name == "GatewayLaunchError":
        from ._remote import GatewayLaunchError

        return GatewayLaunchError
    if name == "GatewayKernelManager":
        from ._manager import GatewayKernelManager

        return GatewayKernelManager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
