"""The conda provider: the kernels of every conda environment, as ``conda/<env>-<kernel>``.

Environments are found from files (``environments.txt``, ``.condarc``, envs dirs) without
running conda; each environment's kernelspecs, plus a Python kernel when it has ipykernel
but no Python kernelspec, become kernel types that launch with the environment activated.
Results are cached in memory and on disk and revalidated by file modification times.

This module imports only the standard library and ``kernel_mgmt.hookspecs``: every
``kernel-mgmt list`` imports every provider, so the work lives in the hook bodies.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from kernel_mgmt.hookspecs import hookimpl

from ._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from ._config import CondaConfig

__all__ = ["__version__", "find_kernels", "launch", "load_config"]

# Not named _config: importing the _config submodule would overwrite that attribute.
_settings_value: CondaConfig | None = None


def _settings() -> CondaConfig:
    global _settings_value
    if _settings_value is None:
        from ._config import CondaConfig

        _settings_value = CondaConfig()
    return _settings_value


@hookimpl
def load_config(config: Mapping[str, Any]) -> None:
    """Read the ``[conda]`` section (keys documented in the README).

    :raises kernel_mgmt.config.ConfigError: naming ``conda.<key>`` for a bad value.
    """
    global _settings_value
    from ._config import parse_config

    _settings_value = parse_config(config.get("conda", {}))


@hookimpl
def find_kernels() -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(name, attributes)`` for every kernel type in every conda environment.

    Sync on purpose: the finder runs it in a worker thread, and it answers from cache in
    well under a millisecond per environment. A configured conda executable is run (with a
    timeout, cached) only when its cached answer is stale. The attributes are the caller's
    own: ``discover`` hands out fresh records (the cache keeps an immutable image).
    """
    from ._discover import discover

    for record in discover(_settings())["kernels"]:
        yield record["name"], record["attributes"]


@hookimpl
async def launch(
    name: str,
    cwd: str | None,
    launch_params: dict[str, Any] | None,
    kernel_id: str | None = None,
) -> tuple[dict[str, Any], Any]:
    """Start kernel type ``name`` with its environment activated; returns its handles.

    ``kernel_id`` (the application's, e.g. Jupyter's) names the connection file.

    :raises kernel_mgmt.discovery.NoSuchKernel: no kernel type of that name (any more).
    :raises kernel_mgmt.subproc.launcher.KernelLaunchError: the kernel could not start.
    """
    import asyncio

    from ._discover import discover
    from ._launch import launch_record

    # Revalidating the cache stats files: do it off the event loop.
    result = await asyncio.to_thread(discover, _settings())
    record = next((r for r in result["kernels"] if r["name"] == name), None)
    if record is None:
        from kernel_mgmt.discovery import NoSuchKernel

        offered = ", ".join(r["name"] for r in result["kernels"]) or "none"
        raise NoSuchKernel(f"conda/{name}", f"no such conda kernel (found: {offered})")
    if cwd is not None:
        cwd = os.fspath(cwd)
    launcher = launch_record(record, cwd, launch_params, kernel_id)
    return await launcher.launch()
