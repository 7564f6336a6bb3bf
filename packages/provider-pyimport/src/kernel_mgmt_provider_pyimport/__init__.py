"""The pyimport provider: ipykernel in the Python running the application (``pyimport/kernel``).

Detection uses ``importlib.util.find_spec`` and never imports ipykernel (it pulls in IPython,
hundreds of modules), so listing stays fast.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from typing import Any

from kernel_mgmt import curve, hookimpl
from kernel_mgmt.discovery import KernelProviderBase

from ._version import __version__

__all__ = ["IPykernelProvider", "__version__", "find_kernels", "kernel_argv", "launch"]

KERNEL_NAME = "kernel"


def kernel_argv() -> list[str]:
    """The command that starts ipykernel in this interpreter."""
    return [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def _ipykernel_resources(spec: Any = None) -> str | None:
    spec = spec or importlib.util.find_spec("ipykernel")
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or ())
    for location in locations:
        resources = os.path.join(location, "resources")
        if os.path.isdir(resources):
            return resources
    return locations[0] if locations else ""


#: site-packages folder -> (its mtime, the ipykernel version its .dist-info names).
_versions: dict[str, tuple[int, str | None]] = {}


def _version_beside(location: str) -> str | None:
    """ipykernel's version from the ``.dist-info`` beside its package folder (cached until
    the folder changes: listing site-packages on every ``kernel-mgmt list`` costs ~0.1 ms)."""
    site = os.path.dirname(location)
    try:
        mtime = os.stat(site).st_mtime_ns
        cached = _versions.get(site)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        version = curve.dist_info_version(os.listdir(site), "ipykernel")
    except OSError:
        return None
    _versions[site] = (mtime, version)
    return version


def _ipykernel_metadata(spec: Any = None) -> dict[str, Any]:
    """Metadata of this interpreter's ipykernel: ``supported_encryption`` when it takes
    CurveZMQ keys (ipykernel >= 7.3), read from its ``.dist-info`` folder name, not an import.
    """
    spec = spec or importlib.util.find_spec("ipykernel")
    version = None
    for location in (spec.submodule_search_locations or ()) if spec else ():
        version = _version_beside(location)
        if version:
            break
    if version is None and spec is not None:
        # Not beside the package (an editable install...): ask the import machinery.
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        try:
            version = dist_version("ipykernel")
        except PackageNotFoundError:
            version = None
    meta: dict[str, Any] = {}
    if curve.ipykernel_supports_curve(version):
        meta["supported_encryption"] = ["curve"]
    return meta


class IPykernelProvider(KernelProviderBase):
    """Offers ``kernel`` when ipykernel is importable here (seed-compatible class)."""

    id = "pyimport"

    def find_kernels(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield the one kernel type, or nothing when ipykernel is not installed."""
        spec = importlib.util.find_spec("ipykernel")
        resource_dir = _ipykernel_resources(spec)
        if resource_dir is None:
            return
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        yield (
            KERNEL_NAME,
            {
                "display_name": f"Python {version} (ipykernel, this environment)",
                "language": "python",
                "language_info": {"name": "python", "version": sys.version.split()[0]},
                "argv": kernel_argv(),
                "resource_dir": resource_dir,
                "interrupt_mode": "signal",
                "env": {},
                "metadata": {
                    **_ipykernel_metadata(spec),
                    "python": {"executable": sys.executable, "prefix": sys.prefix},
                },
            },
        )

    async def launch(
        self,
        name: str,
        cwd: str | None = None,
        launch_params: dict[str, Any] | None = None,
        kernel_id: str | None = None,
    ) -> tuple[dict[str, Any], Any]:
        """Start ipykernel in this interpreter with the subprocess launcher."""
        if name != KERNEL_NAME:
            raise ValueError(f"pyimport offers only {KERNEL_NAME!r}, not {name!r}")
        from kernel_mgmt.subproc.launcher import SubprocessKernelLauncher

        launcher = SubprocessKernelLauncher(
            kernel_cmd=kernel_argv(),
            cwd=cwd,
            launch_params=launch_params,
            kernel_name="python3",
            resource_dir=_ipykernel_resources() or None,
            interrupt_mode="signal",
            kernel_id=kernel_id,
            kernel_metadata=_ipykernel_metadata(),
        )
        return await launcher.launch()


_default = IPykernelProvider()


@hookimpl
def find_kernels() -> Iterator[tuple[str, dict[str, Any]]]:
    """``pyimport/kernel`` when ipykernel is importable by this interpreter."""
    return _default.find_kernels()


@hookimpl
async def launch(
    name: str, cwd: str | None, launch_params: dict[str, Any] | None, kernel_id: str | None = None
) -> tuple[dict[str, Any], Any]:
    """Launch ipykernel as ``sys.executable -m ipykernel_launcher -f {connection_file}``."""
    return await _default.launch(name, cwd, launch_params, kernel_id)
