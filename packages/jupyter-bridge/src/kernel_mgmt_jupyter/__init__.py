"""kernel_mgmt_jupyter: Jupyter Server, JupyterLab and jupyter_client tools see every provider.

- :class:`KernelFinderSpecManager` lists every kernel_mgmt provider's kernel types as
  kernelspecs (jupyter_server uses it once this package is installed);
- :class:`KernelMgmtProvisioner` (the ``kernel-mgmt`` kernel provisioner) launches them
  through :class:`kernel_mgmt.KernelFinder`;
- ``kernel-mgmt-jupyter sync`` writes kernelspec folders for tools that read only folders.

Names are resolved lazily: jupyter_client loads the provisioner by its entry point, and the
server imports this package only to find the spec manager.
"""

from __future__ import annotations

import importlib

from ._version import __version__

_LAZY = {
    "KernelFinderSpecManager": "kernel_mgmt_jupyter.manager",
    "KernelMgmtProvisioner": "kernel_mgmt_jupyter.provisioner",
    "KernelTypeGone": "kernel_mgmt_jupyter.provisioner",
    "jupyter_name": "kernel_mgmt_jupyter.names",
    "type_id_for": "kernel_mgmt_jupyter.names",
}

__all__ = [
    "KernelFinderSpecManager",
    "KernelMgmtProvisioner",
    "KernelTypeGone",
    "__version__",
    "jupyter_name",
    "type_id_for",
]

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from .manager import KernelFinderSpecManager
    from .names import jupyter_name, type_id_for
    from .provisioner import KernelMgmtProvisioner, KernelTypeGone


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """jupyter_server's extension hook: the extension lives in :mod:`.serverext`."""
    return [{"module": "kernel_mgmt_jupyter.serverext"}]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kernel_mgmt_jupyter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
