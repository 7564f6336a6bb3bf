"""The spec provider: kernels described by kernelspec folders (``spec/<name>``).

Searches Jupyter's kernelspec path (``jupyter_path("kernels")``: ``$JUPYTER_PATH``, the user
data dir, ``<sys.prefix>/share/jupyter``, the system dirs) in that order; the first folder of a
name wins and names are compared lower-cased. A folder with an unreadable or invalid
kernel.json, or a name outside ``[a-z0-9._-]``, is skipped with one warning naming the file.

kernel.json files are read as jupyter_client reads them, so that the same kernelspecs are
listed as by ``jupyter kernelspec list``: a missing ``language`` is "" and a missing
``display_name`` is the folder's name; one without ``argv`` is listed (with a warning) but
launching it fails with an error naming the file.

Folders that ``kernel-mgmt-jupyter sync`` wrote for another provider's kernel types
(``metadata.kernel_mgmt.synced``) are not listed: that provider lists those types itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from kernel_mgmt import kernelspec
from kernel_mgmt.discovery import (
    KernelProviderBase,
    NoSuchKernel,
    problems_captured,
    report_problem,
)
from kernel_mgmt.hookspecs import hookimpl

from ._version import __version__

__all__ = ["KernelSpecProvider", "__version__", "find_kernels", "launch"]


def _synced_copy(spec: dict[str, Any]) -> bool:
    """True for a kernelspec ``kernel-mgmt-jupyter sync`` wrote for another provider's type."""
    metadata = spec.get("metadata")
    mark = metadata.get("kernel_mgmt") if isinstance(metadata, dict) else None
    return isinstance(mark, dict) and mark.get("synced") is True


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn(message: str) -> None:
    """Report a problem of one file: to every finder's call, and on stderr once per process.

    Inside a hook call a :class:`~kernel_mgmt.discovery.KernelFinder` runs, the message is
    this provider's problem (``kernel-mgmt providers``; the finder logs it once), on every
    call so that every finder lists it. Elsewhere it is logged once per process: listing
    runs often and the file rarely changes.
    """
    if problems_captured():
        report_problem(message)
        return
    with _warned_lock:
        first = message not in _warned
        _warned.add(message)
    if first:
        import logging  # deferred: the common case has nothing to report

        logging.getLogger(__name__).warning("%s", message)


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
                _warn(f"skipping kernelspec {spec.path or resource_dir}: {spec.problem}")
                continue
            if _synced_copy(spec):
                continue
            if not spec.get("argv"):  # jupyter_client lists it too; launch() explains
                path = os.path.join(resource_dir, kernelspec.KERNEL_FILE)
                _warn(
                    f"kernelspec {path} has no (or an empty) 'argv' ({kernelspec.ARGV_MEANING}): "
                    "listed, but it cannot be started"
                )
            found.append((name, kernelspec.kernel_attributes(spec, resource_dir)))
        for path, reason in skipped:
            _warn(f"skipping kernelspec {path}: {reason}")
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
        try:
            spec = kernelspec.read_kernel_spec(resource_dir)
        except kernelspec.InvalidKernelSpec as e:  # e.g. no argv: listed, but nothing to run
            from kernel_mgmt.subproc.launcher import KernelLaunchError

            raise KernelLaunchError(
                f"cannot start kernel {self.id}/{name}: {e}; fix that kernel.json or remove "
                "the kernelspec"
            ) from e
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
