"""The hooks a kernel provider implements.

A provider is a module, an instance or a :class:`~kernel_mgmt.discovery.KernelProviderBase`
subclass registered under the ``kernel_mgmt`` entry-point group; the entry-point name is the
provider id. Mark each hook function with ``hookimpl``::

    from kernel_mgmt import hookimpl

    @hookimpl
    def find_kernels():
        yield "standard", {"display_name": "Oblong", "language": "oblong", "argv": [...]}

The finder calls each provider's hooks on its own (never all providers at once), so one
broken or slow provider cannot hide the others' kernels.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from typing import Any

import pluggy

PROJECT_NAME = "kernel_mgmt"

#: Marks the hook specifications below.
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a provider's hook implementations: pluggy's marker. ``from kernel_mgmt import
#: hookimpl`` (:mod:`kernel_mgmt.markers`) writes the same marks without importing pluggy,
#: which is what providers use, so that ``kernel-mgmt list`` never imports pluggy.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: ``(name, attributes)`` as yielded by :func:`find_kernels`.
KernelRecord = tuple[str, dict[str, Any]]


@hookspec
def load_config(config: Mapping[str, Any]) -> None:
    """Receive the configuration, once, before any other hook of this provider is called.

    ``config`` is the whole validated configuration (every file merged); a provider reads
    its own section, named by its provider id: ``config.get("conda", {})``.

    :param config: the merged configuration mapping; do not modify it.
    :returns: nothing.
    """


@hookspec
def find_kernels() -> (
    Iterable[KernelRecord] | AsyncIterator[KernelRecord] | Awaitable[list[KernelRecord]]
):
    """Yield the kernel types this provider can launch, as ``(name, attributes)`` pairs.

    ``name`` is unique within the provider and has no ``/``; the finder exposes it as
    ``"<provider id>/<name>"``. ``attributes`` holds at least ``display_name`` and
    ``language`` (the finder adds ``language_info: {"name": language}`` when missing), plus
    ``argv``, ``resource_dir``, ``interrupt_mode`` and ``metadata`` where known;
    ``metadata["launch_parameter_schema"]`` is a JSON Schema for ``launch_params``.

    May be a generator, an ``async def`` generator, or an ``async def`` returning a list.
    It runs in a worker thread (async ones in a private event loop there) under a timeout,
    so it may block briefly, but should be quick: every ``kernel-mgmt list`` calls it.

    To report a skipped item (a broken kernel.json, an unreadable environment), call
    ``kernel_mgmt.discovery.report_problem(message)``, naming the file or environment: it is
    listed as your provider's problem in ``KernelFinder.problems`` and ``kernel-mgmt
    providers`` (and logged once by the finder). Call it from the hook's own thread. The same
    holds for :func:`load_config` and for importing the provider; not for :func:`launch`,
    which raises instead. Outside a finder's call it logs a warning; a provider that warns
    only once per process should still report on every call while
    :func:`kernel_mgmt.discovery.problems_captured` is true, so that every finder lists it.

    :returns: an iterable (or async iterable, or awaitable list) of ``(name, attributes)``.
    """


@hookspec(firstresult=True)
async def launch(
    name: str, cwd: str | None, launch_params: dict[str, Any] | None, kernel_id: str | None
) -> tuple[dict[str, Any], Any]:
    """Start a kernel of type ``name`` (without the provider prefix) and return its handles.

    Called only on the provider that owns the type id's prefix: the finder never broadcasts
    a launch. ``launch_params`` have already been validated against the kernel type's
    ``metadata.launch_parameter_schema`` (with its defaults filled in).

    An implementation may leave out parameters it does not use (pluggy's rule): the finder
    passes only those it declares, so ``launch(name, cwd, launch_params)`` is fine.

    Stops at the first non-None result (``firstresult``).

    :param name: the kernel type name, as yielded by :func:`find_kernels`.
    :param cwd: working directory for the kernel, or None for the caller's; provider-specific.
    :param launch_params: validated launch parameters, or None.
    :param kernel_id: the application's id for this kernel (kept across restarts), or None
        to let the provider choose one; the subprocess launcher names the connection file
        ``kernel-<kernel_id>.json``.
    :returns: ``(connection_info, kernel_manager)``: the connection dict with jupyter_client's
        keys and a :class:`~kernel_mgmt.managerabc.KernelManagerABC`.
    """
