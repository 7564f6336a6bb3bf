"""Find kernel types from every installed provider, and launch them through their owner.

A provider is registered under the ``kernel_mgmt`` entry-point group (or the old
``jupyter_kernel_mgmt.kernel_type_providers`` group); the entry-point name is its id. It may
be a module with :data:`~kernel_mgmt.hookspecs.hookimpl` functions, an instance with such
methods, or (seed style) a :class:`KernelProviderBase` subclass, which the finder instantiates.

Loading is robust: a provider that fails to import, raises, hangs past its timeout or yields
malformed records is reported once (logged, and listed in :attr:`KernelFinder.problems` and
:attr:`KernelFinder.providers`, naming its distribution) and skipped; every other provider's
kernels still appear. What a provider passes to :func:`report_problem` while its hook runs
(e.g. a skipped kernel.json) is listed as its problem too.

``KernelSpecProvider`` and ``IPykernelProvider``, which the seed documents here, are loaded
from the installed spec and pyimport providers when imported from this module.

``python -m kernel_mgmt.discovery`` prints the kernel type ids, one a line.

This module holds the finder and what the seed documents here; each other concern is in the
module named for it, and its public names are importable from here too:
:mod:`~kernel_mgmt.entrypoints` (the fast entry-point scan), :mod:`~kernel_mgmt.loading`
(claims, duplicates, import, ``load_config``), :mod:`~kernel_mgmt.hookimpls` (reading hooks
as pluggy does), :mod:`~kernel_mgmt.hookcalls` (hook calls under a timeout),
:mod:`~kernel_mgmt.problems` (``report_problem``), :mod:`~kernel_mgmt.records` (checking
``find_kernels`` records), :mod:`~kernel_mgmt.launch_params` (``launch_params`` against their
schema) and :mod:`~kernel_mgmt.providers` (``KernelProviderBase``, ``ProviderInfo``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from . import curve
from .config import (
    DEFAULT_TIMEOUT,
    ConfigError,
    load_config,
    providers_section,
    transport_encryption_policy,
)
from .entrypoints import ENTRY_POINT_GROUP, OLD_ENTRY_POINT_GROUP, scan_entry_points
from .hookcalls import FindCalls, ProviderTimeout, call_impl
from .hookimpls import HOOK_NAMES
from .launch_params import InvalidLaunchParams, validate_launch_params
from .loading import PROVIDER_ID_RE, ProviderLoading
from .problems import (
    LOGGER_NAME,
    Problem,
    ProblemReporting,
    problems_captured,
    report_note,
    report_problem,
)

# Re-exported: tests and tools watch the worker sinks through discovery._sinks.
from .problems import _sinks as _sinks
from .providers import KernelProviderBase, ProviderInfo, _module_provider_id, _Provider
from .seed_compat import ProviderClassUnavailable, provider_class
from .selection import ENV_PROVIDERS

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_PROVIDERS",
    "HOOK_NAMES",
    "LOGGER_NAME",
    "OLD_ENTRY_POINT_GROUP",
    "PROVIDER_ID_RE",
    "InvalidLaunchParams",
    "KernelFinder",
    "KernelProviderBase",
    "NoSuchKernel",
    "Problem",
    "ProviderClassUnavailable",
    "ProviderInfo",
    "ProviderTimeout",
    "problems_captured",
    "report_note",
    "report_problem",
    "scan_entry_points",
    "validate_launch_params",
]


class NoSuchKernel(KeyError):
    """No kernel type of that id: unknown provider prefix, or the provider does not offer it.

    A KeyError (so a LookupError), as the seed raised and as jupyter_client's NoSuchKernel is.
    """

    def __init__(self, name: str, reason: str = "") -> None:
        self.name = name
        self.message = f"no kernel type {name!r}" + (f": {reason}" if reason else "")
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message  # not KeyError's repr() of it


def _lookup(type_id: str, provider: _Provider, kernel_name: str) -> str:
    """The provider's own spelling of ``kernel_name``: exact, else case-insensitive.

    Kernelspec names are case-insensitive (jupyter_client lower-cases them), so
    ``spec/Python3`` means ``spec/python3``; two names differing only in case are ambiguous.
    """
    if kernel_name in provider.kernels:
        return kernel_name
    folded = kernel_name.casefold()
    matches = [k for k in provider.kernels if k.casefold() == folded]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise NoSuchKernel(type_id, f"ambiguous: provider {provider.id!r} offers {sorted(matches)}")
    if provider.info.status == "failed":
        raise NoSuchKernel(type_id, f"provider {provider.id!r} failed: {provider.info.reason}")
    offered = ", ".join(sorted(provider.kernels)) or "none"
    raise NoSuchKernel(type_id, f"provider {provider.id!r} offers: {offered}")


class KernelFinder(ProviderLoading, FindCalls, ProblemReporting):
    """Finds kernel types across providers, and launches them through the owning provider.

    ``providers`` is a list of provider objects (instances, modules, or KernelProviderBase
    subclasses, which are instantiated) or a mapping ``{provider_id: provider}``. The id of a
    listed provider is its ``id`` attribute, or for a module its name without the
    ``kernel_mgmt_provider_`` prefix. Use :meth:`from_entrypoints` to load installed providers.

    Each provider's hook calls (import, ``load_config``, ``find_kernels``) run under a timeout:
    ``timeout`` here, else ``[providers] timeout`` in the config (default 10 s);
    ``[providers.timeouts]`` sets it for single provider ids (``conda = 30``).
    """

    def __init__(
        self,
        providers: Iterable[Any] | Mapping[str, Any] = (),
        config: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        self.config: dict[str, Any] = dict(config or {})
        section = providers_section(self.config)
        transport_encryption_policy(self.config)  # a bad value fails here, not at launch
        #: Default seconds per hook call of a provider.
        self.timeout = float(
            timeout if timeout is not None else section.get("timeout", DEFAULT_TIMEOUT)
        )
        self._timeouts = {k: float(v) for k, v in (section.get("timeouts") or {}).items()}
        self._pm = None  # pluggy's PluginManager, made when a provider needs it (hookimpls)
        self._providers: dict[str, _Provider] = {}
        self._all: list[_Provider] = []  # including failed and disabled ones, in load order
        self._problems: list[Problem] = []
        self._reported: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        items = (
            providers.items() if isinstance(providers, Mapping) else ((None, p) for p in providers)
        )
        for provider_id, obj in items:
            if isinstance(obj, type):
                obj = obj()
            pid = provider_id or _module_provider_id(obj)
            if not pid:
                raise TypeError(f"cannot tell the provider id of {obj!r}: give it an 'id'")
            self._add(ProviderInfo(id=pid), obj)

    def timeout_for(self, provider_id: str) -> float:
        """Seconds one hook call of ``provider_id`` may take (its own, else the default)."""
        return self._timeouts.get(provider_id, self.timeout)

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def from_entrypoints(
        cls,
        config: Mapping[str, Any] | None = None,
        *,
        entry_points: Iterable[Any] | None = None,
        timeout: float | None = None,
    ) -> KernelFinder:
        """Load every provider advertised under the ``kernel_mgmt`` entry-point group.

        The old ``jupyter_kernel_mgmt.kernel_type_providers`` group loads too. ``config``
        defaults to the config files (:func:`kernel_mgmt.config.load_config`); its
        ``[providers]`` table and ``KERNEL_MGMT_PROVIDERS`` select which providers load.
        ``entry_points`` replaces the installed ones (objects like
        ``importlib.metadata.EntryPoint``), for tests and embedding applications.

        :raises kernel_mgmt.config.ConfigError: for a bad config file.
        """
        if config is None:
            config = load_config()
        finder = cls((), config, timeout=timeout)
        eps = scan_entry_points() if entry_points is None else list(entry_points)
        finder._load_entry_points(eps)
        return finder

    def _selection(self) -> Callable[[str], str | None]:
        """Return a function: provider id → reason it is disabled, or None to load it."""
        section = providers_section(self.config)
        allow = section.get("allow")
        deny = set(section.get("deny") or ())
        env = os.environ.get(ENV_PROVIDERS)
        only = None if env is None else {p.strip() for p in env.split(",") if p.strip()}

        def disabled(pid: str) -> str | None:
            if only is not None and pid not in only:
                return f"not in {ENV_PROVIDERS}={env!r}"
            if allow is not None and pid not in allow:
                return "not in the config's providers.allow list"
            if pid in deny:
                return "in the config's providers.deny list"
            return None

        return disabled

    # -- reporting (the recording itself is ProblemReporting's) ---------------------------

    @property
    def problems(self) -> list[Problem]:
        """Every problem reported so far (each once), oldest first."""
        return list(self._problems)

    @property
    def providers(self) -> list[ProviderInfo]:
        """Status of every provider seen: loaded, failed or disabled, sorted by id."""
        return sorted((p.info for p in self._all), key=lambda i: (i.id, i.distribution or ""))

    # -- finding (one shared, timed find_kernels call per provider: FindCalls) -------------

    def _find_all(self) -> list[tuple[str, dict[str, Any]]]:
        providers = list(self._providers.values())
        jobs = [(p, self._start_find(p)) for p in providers]
        found: list[tuple[str, dict[str, Any]]] = []
        for provider, job in jobs:
            if job is None:
                continue
            for name, attrs in self._finish_find(provider, job):
                found.append((f"{provider.id}/{name}", attrs))
        return found

    def find_kernels(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(type_id, attributes)`` for every kernel type, ``type_id = "provider/name"``.

        Providers run concurrently in worker threads, each under the timeout; the order is
        stable (providers in load order, kernels in the order each provider yields them).
        Safe to call from inside a running event loop.
        """
        yield from self._find_all()

    async def find_kernels_async(self) -> list[tuple[str, dict[str, Any]]]:
        """Like :meth:`find_kernels`, awaited without blocking the running event loop."""
        import asyncio

        return await asyncio.to_thread(self._find_all)

    # -- launching ----------------------------------------------------------------------------

    def _route(self, name: str) -> tuple[_Provider, str]:
        provider_id, sep, kernel_name = name.partition("/")
        if not sep or not kernel_name:
            raise NoSuchKernel(
                name,
                "kernel type ids are '<provider id>/<name>', e.g. 'spec/python3'",
            )
        provider = self._providers.get(provider_id)
        if provider is None:
            known = next((p.info for p in self._all if p.id == provider_id), None)
            if known is not None and known.status == "disabled":
                why = f"provider {provider_id!r} is disabled: {known.reason}"
            elif known is not None:
                # Not in _providers and not disabled: it failed while loading. A reason
                # from the import step already reads "failed to load <module>: ...".
                reason = known.reason
                if reason.startswith("failed to load "):
                    why = f"provider {provider_id!r} {reason}"
                else:
                    why = f"provider {provider_id!r} failed to load: {reason}"
            else:
                ids = ", ".join(sorted(self._providers)) or "none"
                why = f"no provider {provider_id!r} (loaded providers: {ids})"
            raise NoSuchKernel(name, why)
        return provider, kernel_name

    async def launch(
        self,
        name: str,
        cwd: str | None = None,
        launch_params: dict[str, Any] | None = None,
        *,
        kernel_id: str | None = None,
        transport_encryption: str | None = None,
    ) -> tuple[dict[str, Any], Any]:
        """Launch kernel type ``name`` through the provider owning its prefix.

        ``launch_params`` are validated against the type's ``launch_parameter_schema`` (with
        defaults applied) before the provider is called, so nothing starts when they are wrong.
        ``kernel_id`` (e.g. to keep an id across a restart) reaches providers whose launch
        hook accepts it. Concurrent launches share one ``find_kernels`` call of the provider.
        ``transport_encryption`` (``disabled``/``auto``/``required``) is this launch's CurveZMQ
        policy in place of the config's (a kernelspec's own option still overrides either;
        see :mod:`kernel_mgmt.curve`): the Jupyter bridge passes jupyter_client's ``required``.

        :returns: ``(connection_info, kernel_manager)`` from the provider.
        :raises NoSuchKernel: unknown provider or kernel type.
        :raises InvalidLaunchParams: parameters that do not match the schema.
        :raises ValueError: a ``transport_encryption`` that is not one of the three policies.
        """
        import asyncio

        provider, kernel_name = self._route(name)
        if kernel_name not in provider.kernels:
            job = self._start_find(provider)
            if job is not None:
                await asyncio.to_thread(self._finish_find, provider, job)
        kernel_name = _lookup(name, provider, kernel_name)
        attrs = provider.kernels[kernel_name]
        params = validate_launch_params(name, attrs, launch_params)
        impl = provider.impls.get("launch")
        if impl is None:
            raise NoSuchKernel(name, f"provider {provider.id!r} has no launch hook")
        kwargs: dict[str, Any] = {"kernel_id": kernel_id} if kernel_id is not None else {}
        # This launch's transport_encryption, else the config's, reaches every launcher the
        # provider builds (policy_scope raises ValueError for a bad value).
        with curve.policy_scope(transport_encryption or transport_encryption_policy(self.config)):
            result = call_impl(impl, name=kernel_name, cwd=cwd, launch_params=params, **kwargs)
            if hasattr(result, "__await__"):
                result = await result
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(
                f"provider {provider.id!r} launch({kernel_name!r}) returned {result!r:.80}, "
                "not (connection_info, kernel_manager)"
            )
        _remember_launch(result[1], name, os.getcwd() if cwd is None else os.fspath(cwd), params)
        return result


def _remember_launch(
    manager: Any, type_id: str, cwd: str, launch_params: dict[str, Any] | None
) -> None:
    """Note how a kernel was launched on its manager, where the provider did not already.

    A restarter relaunches the same type with the same working directory and parameters
    (the seed's restarter reads ``manager.cwd``); managers of any provider get them here.
    Best effort: the kernel is running by now, so whatever a manager's attributes raise
    (``__slots__``, read-only or failing properties) must not lose it for the caller.
    """
    for attr, value in (("kernel_type", type_id), ("cwd", cwd), ("launch_params", launch_params)):
        if value is None:
            continue
        with contextlib.suppress(Exception):
            if getattr(manager, attr, None) is None:
                setattr(manager, attr, value)


def __getattr__(name: str) -> Any:
    """``from kernel_mgmt.discovery import KernelSpecProvider`` (or ``IPykernelProvider``).

    The seed documents both classes in ``discovery``. Core never imports a provider: on this
    explicit request it loads the installed one through its ``kernel_mgmt`` entry point and
    returns the class of that name from it (nothing happens at import time); see
    :mod:`kernel_mgmt.seed_compat`.
    """
    cls = provider_class(name, scan_entry_points)
    globals()[name] = cls  # later look-ups skip the entry-point scan
    return cls


def main(argv: list[str] | None = None) -> int:
    """``python -m kernel_mgmt.discovery``: print every kernel type id, one a line."""
    import argparse  # the seed's command takes no options, but answers --help

    parser = argparse.ArgumentParser(
        prog="python -m kernel_mgmt.discovery",
        description="Print the id of every kernel type from every installed provider, one a "
        "line (the seed's command; `kernel-mgmt list` shows a table).",
    )
    parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        finder = KernelFinder.from_entrypoints()
    except ConfigError as e:
        print(f"{__package__}.discovery: error: {e}", file=sys.stderr)
        return 2
    for type_id, _attrs in finder.find_kernels():
        print(type_id)
    return 0


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: providers subclass
    # kernel_mgmt.discovery.KernelProviderBase, which must be the class the finder checks.
    from kernel_mgmt.discovery import main as _main

    sys.exit(_main())
