"""kernel_mgmt: find, launch, manage and talk to Jupyter kernels.

The package root stays light: ``import kernel_mgmt`` loads nothing but this file.
Public names are resolved lazily on first attribute access, so that a kernel's
start-up or ``kernel-mgmt list`` never pays for the client or jsonschema.
"""

from __future__ import annotations

import importlib

from ._version import __version__

_LAZY = {
    "hookimpl": "kernel_mgmt.markers",
    "KernelFinder": "kernel_mgmt.discovery",
    "KernelProviderBase": "kernel_mgmt.discovery",
    "NoSuchKernel": "kernel_mgmt.discovery",
    "KernelManager": "kernel_mgmt.subproc.manager",
    "KernelManagerABC": "kernel_mgmt.managerabc",
    "SubprocessKernelLauncher": "kernel_mgmt.subproc.launcher",
    "SubprocessIPCKernelLauncher": "kernel_mgmt.subproc.launcher",
    "KernelClient": "kernel_mgmt.client",
    "AsyncKernelClient": "kernel_mgmt.client",
    "IOLoopKernelClient": "kernel_mgmt.client",
    "BlockingKernelClient": "kernel_mgmt.client",
    "KernelDied": "kernel_mgmt.client_base",
    "start_kernel_async": "kernel_mgmt.hl",
    "run_kernel_async": "kernel_mgmt.hl",
    "start_kernel_blocking": "kernel_mgmt.hl",
    "run_kernel_blocking": "kernel_mgmt.hl",
}

__all__ = [
    "AsyncKernelClient",
    "BlockingKernelClient",
    "IOLoopKernelClient",
    "KernelClient",
    "KernelDied",
    "KernelFinder",
    "KernelManager",
    "KernelManagerABC",
    "KernelProviderBase",
    "NoSuchKernel",
    "SubprocessIPCKernelLauncher",
    "SubprocessKernelLauncher",
    "__version__",
    "hookimpl",
    "run_kernel_async",
    "run_kernel_blocking",
    "start_kernel_async",
    "start_kernel_blocking",
]

# Not `typing.TYPE_CHECKING`: importing typing would double the cost of `import kernel_mgmt`.
TYPE_CHECKING = False

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .client import AsyncKernelClient, BlockingKernelClient, IOLoopKernelClient, KernelClient
    from .client_base import KernelDied
    from .discovery import KernelFinder, KernelProviderBase, NoSuchKernel
    from .hl import run_kernel_async, run_kernel_blocking, start_kernel_async, start_kernel_blocking
    from .managerabc import KernelManagerABC
    from .markers import hookimpl
    from .subproc.launcher import SubprocessIPCKernelLauncher, SubprocessKernelLauncher
    from .subproc.manager import KernelManager


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kernel_mgmt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
