"""The spec provider: kernels described by kernelspec folders (``spec/<name>``).

Searches Jupyter's kernelspec path (``jupyter_path("kernels")``: ``$JUPYTER_PATH``, the user
data dir, ``<sys.prefix>/share/jupyter``, the system dirs) in that order; the first folder of a
name wins and names are compared lower-cased. A folder with an unreadable or invalid
kernel.json, or a name outside ``[a-z0-9._-]``, is skipped with one warning naming the file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from kernel_mgmt import kernelspec
from kernel_mgmt.discovery import KernelProviderBase, NoSuchKernel
from kernel_mgmt.hookspecs import hookimpl

from ._version import __version__

__all__ = ["KernelSpecProvider", "__version__", "find_kernels", "launch"]

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(path: str, message: str) -> None:
    """Log one warning per file per process: listing runs often, the file rarely changes."""
    with _warned_lock:
        if path in _warned:
            return
        _warned.add(path)
    import logging  # deferred: the common case has nothing to report

    logging.getLogger(__name__).warning("skipping kernelspec %s: %s", path, message)


class KernelSpecProvider(KernelProviderBase):
    """Offers kernel types from installed kernelspec folders (seed-compatible class).

    ``search_path`` replaces Jupyter's kernelspec path (a list of ``.../kernels`` folders).
    """

    id = "spec"

    def __init__(self, search_path: Iterable[str] | None = None) -> None:
        self.search_path = list(search_path) if search_path is not None else None

    def find_kernels(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(name, attributes)`` for each valid kernelspec, sorted by name."""
        skipped: list[tuple[str, str]] = []
        found = []
        for name, resource_dir, spec in kernelspec.iter_kernel_specs(self.search_path, skipped):
            if isinstance(spec, kernelspec.InvalidKernelSpec):
                _warn_once(spec.path or resource_dir, spec.problem)
            else:
                found.append((name, kernelspec.kernel_attributes(spec, resource_dir)))
        for path, reason in skipped:
            _warn_once(path, reason)
        found.sort(key=lambda item: item[0])
        return iter(found)

    async def launch(
        self,
        name: str,
        cwd: str | None = None,
        launch_params: dict[str, Any] | None = None,
        kernel_id: str | None = None,
    ) -> tuple[dict[str, Any], Any]:
        """Start kernelspec ``name`` with the subprocess launcher (env, interrupt_mode honoured)."""
        from kernel_mgmt.subproc.launcher import SubprocessKernelLauncher

        try:
            resource_dir = kernelspec.find_kernel_spec(name, self.search_path)
        except kernelspec.NoSuchKernelSpec as e:  # removed since it was listed
            raise NoSuchKernel(f"{self.id}/{name}", str(e)) from None
        spec = kernelspec.read_kernel_spec(resource_dir)
        launcher = SubprocessKernelLauncher(
            kernel_cmd=spec["argv"],
            cwd=cwd,
            extra_env=kernelspec.expand_env(spec.get("env"), os.environ) or None,
            launch_params=launch_params,
            kernel_name=name.lower(),
            resource_dir=resource_dir,
            interrupt_mode=spec.get("interrupt_mode", "signal"),
            kernel_id=kernel_id,
        )
        return await launcher.launch()


_default = KernelSpecProvider()


@hookimpl
def find_kernels() -> Iterator[tuple[str, dict[str, Any]]]:
    """Kernelspecs on Jupyter's search path, as ``(name, attributes)``."""
    return _default.find_kernels()


@hookimpl
async def launch(
    name: str, cwd: str | None, launch_params: dict[str, Any] | None, kernel_id: str | None = None
) -> tuple[dict[str, Any], Any]:
    """Launch kernelspec ``name`` as a local subprocess."""
    return await _default.launch(name, cwd, launch_params, kernel_id)
