"""Loading providers: from entry points (claims, duplicates, selection) to registered hooks.

:class:`ProviderLoading` is the loading half of :class:`~kernel_mgmt.discovery.KernelFinder`:
it orders the entry points (the ``kernel_mgmt`` group before the old one), settles who owns
each provider id (the same provider under both groups is one; a new-group claimant shadows
old-group ones; two claimants of one rank are an error naming both distributions), imports
each provider under its timeout, reads its hook implementations
(:mod:`kernel_mgmt.hookimpls`) and calls its ``load_config``.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from .entrypoints import ENTRY_POINT_GROUP, OLD_ENTRY_POINT_GROUP
from .hookcalls import ProviderTimeout, _Job, call_impl
from .hookimpls import HOOK_NAMES, NeedsPluggy, pluggy_manager, read_hookimpls
from .problems import Problem, _dist_label
from .providers import KernelProviderBase, ProviderInfo, _Provider

__all__ = ["PROVIDER_ID_RE", "ProviderLoading"]

PROVIDER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class _Claim(NamedTuple):
    """One package's claim on a provider id (an entry point, possibly under both groups)."""

    distribution: str | None
    version: str | None
    value: str | None
    new_group: bool  # under ``kernel_mgmt`` (else only under the old group)

    def label(self) -> str:
        return f"{_dist_label(self.distribution, self.version)} ({self.value})"


class ProviderLoading:
    """Loading and registering providers, for the finder."""

    config: dict[str, Any]
    _pm: Any  # a pluggy.PluginManager, made for the first provider that needs one
    _providers: dict[str, _Provider]
    _all: list[_Provider]
    _problems: list[Problem]
    _lock: threading.Lock
    # From KernelFinder.
    timeout_for: Callable[[str], float]
    _selection: Callable[[], Callable[[str], str | None]]
    _report_collected: Callable[..., None]
    _report: Callable[[ProviderInfo, str], None]
    _fail: Callable[[ProviderInfo, str], None]

    def _load_entry_points(self, eps: list[Any]) -> None:
        group_rank = {ENTRY_POINT_GROUP: 0, OLD_ENTRY_POINT_GROUP: 1}

        def dist_of(ep: Any) -> tuple[str | None, str | None]:
            dist = getattr(ep, "dist", None)
            if dist is None:
                return None, None
            try:
                return dist.name, dist.version
            except Exception:
                return None, None

        ordered = sorted(
            eps,
            key=lambda ep: (
                group_rank.get(getattr(ep, "group", ""), 2),
                ep.name,
                dist_of(ep)[0] or "",
            ),
        )
        disabled = self._selection()
        # Who claims each id (distribution, version, entry-point value, new group?): the same
        # provider under both groups is one claimant (of the new group). Claimants of the new
        # group shadow those of only the old one (e.g. the old jupyter_kernel_mgmt package's
        # spec and pyimport); two different claimants of the same rank are an error for both.
        claimants: dict[str, list[_Claim]] = {}
        for ep in ordered:  # new-group entry points first
            dname, dversion = dist_of(ep)
            value = getattr(ep, "value", None)
            same = claimants.setdefault(ep.name, [])
            if not any(c.distribution == dname and c.value == value for c in same):
                new_group = getattr(ep, "group", "") == ENTRY_POINT_GROUP
                same.append(_Claim(dname, dversion, value, new_group))
        clashed: set[tuple[str, str | None, str | None]] = set()
        owners: dict[str, tuple[Any, ProviderInfo]] = {}
        disabled_seen: set[tuple[str, str | None, str | None]] = set()
        for ep in ordered:
            dname, dversion = dist_of(ep)
            info = ProviderInfo(
                id=ep.name,
                distribution=dname,
                version=dversion,
                group=getattr(ep, "group", None),
                value=getattr(ep, "value", None),
            )
            if not PROVIDER_ID_RE.match(ep.name):
                self._fail(
                    info,
                    f"invalid provider id {ep.name!r}: entry-point names must match "
                    f"{PROVIDER_ID_RE.pattern} (lower case, no '/')",
                )
                continue
            reason = disabled(ep.name)
            if reason:
                key = (ep.name, dname, info.value)
                if key not in disabled_seen:  # once, even when listed under both groups
                    disabled_seen.add(key)
                    info.status, info.reason = "disabled", reason
                    self._all.append(_Provider(info))
                continue
            if (ep.name, dname, info.value) in clashed:
                continue  # the same claimant under the other group: reported once
            owner = owners.get(ep.name)
            if owner is not None and (owner[1].distribution, owner[1].value) == (dname, info.value):
                continue  # the same provider under both groups: one provider, not a clash
            rivals = claimants[ep.name]
            newer = [c for c in rivals if c.new_group]
            mine = next(c for c in rivals if (c.distribution, c.value) == (dname, info.value))
            if newer and not mine.new_group:
                clashed.add((ep.name, dname, info.value))
                by = " and ".join(c.label() for c in newer)
                info.status = "disabled"
                info.reason = (
                    f"shadowed by {by} under the {ENTRY_POINT_GROUP!r} entry-point group "
                    f"(this one is under the old {OLD_ENTRY_POINT_GROUP!r} group)"
                )
                self._all.append(_Provider(info))
                self._report(info, f"not loaded: {info.reason}")
                continue
            clash = newer or rivals
            if len(clash) > 1:
                # None wins: which one would is an accident of install order, and a
                # package must not silently replace another's kernels.
                clashed.add((ep.name, dname, info.value))
                names = " and by ".join(c.label() for c in clash)
                which = "neither is" if len(clash) == 2 else "none of them is"
                self._fail(
                    info,
                    f"duplicate provider id {ep.name!r}: registered by {names}; {which} "
                    "loaded: uninstall all but one of these distributions",
                )
                continue
            owners[ep.name] = (ep, info)
            timeout = self.timeout_for(ep.name)
            try:
                obj = self._run_provider(
                    info,
                    lambda ep=ep: self._instantiate(ep.load()),
                    timeout,
                    f"kernel_mgmt-load-{ep.name}",
                )
            except ProviderTimeout:
                self._fail(info, f"importing {info.value} took longer than {timeout:g} s")
                continue
            except BaseException as e:
                if isinstance(e, KeyboardInterrupt):
                    raise
                self._fail(info, f"failed to load {info.value}: {type(e).__name__}: {e}")
                continue
            own_id = getattr(obj, "id", None)
            if isinstance(own_id, str) and own_id and own_id != ep.name:
                self._report(
                    info,
                    f"provider object says id {own_id!r} but its entry point is named "
                    f"{ep.name!r}; using {ep.name!r}",
                )
            self._add(info, obj)

    @staticmethod
    def _instantiate(obj: Any) -> Any:
        # The seed names a class in its entry point; the finder makes the instance.
        if isinstance(obj, type):
            return obj()
        return obj

    def _add(self, info: ProviderInfo, obj: Any) -> None:
        provider = _Provider(info)
        self._all.append(provider)
        if not PROVIDER_ID_RE.match(info.id):
            self._fail(
                info, f"invalid provider id {info.id!r} (must match {PROVIDER_ID_RE.pattern})"
            )
            return
        if info.id in self._providers:
            self._fail(info, f"duplicate provider id {info.id!r}; keeping the first")
            return
        if (
            callable(obj)
            and not isinstance(obj, (type(sys), KernelProviderBase))
            and not any(hasattr(obj, h) for h in HOOK_NAMES)
        ):
            self._fail(info, f"{obj!r} is not a provider (a module, instance or class)")
            return
        other = next((pid for pid, p in self._providers.items() if p.plugin == obj), None)
        if other is not None:
            self._fail(
                info,
                f"its entry point ({info.value}) names the same object as provider {other!r}; "
                "one object can be one provider only",
            )
            return
        try:
            impls, unknown = read_hookimpls(obj)
        except NeedsPluggy:
            try:
                impls, unknown = self._register_with_pluggy(info, obj)
            except Exception as e:
                self._fail(info, f"invalid hook implementation: {e}".replace("\n", " "))
                return
        provider.plugin = obj
        provider.impls = impls
        info.hooks = [h for h in HOOK_NAMES if h in impls]
        if "find_kernels" not in impls:
            self._unregister(obj)
            extra = f" (unknown hooks: {', '.join(sorted(unknown))})" if unknown else ""
            self._fail(info, f"implements no find_kernels hook{extra}")
            return
        if unknown:
            self._report(info, f"ignoring unknown hooks: {', '.join(sorted(unknown))}")
        if "launch" not in impls:
            self._report(
                info, "has no launch hook: its kernel types are listed but cannot be started"
            )
        if "load_config" in impls:
            timeout = self.timeout_for(info.id)
            try:
                self._run_provider(
                    info,
                    lambda: call_impl(impls["load_config"], config=self.config),
                    timeout,
                    f"kernel_mgmt-config-{info.id}",
                )
            except ProviderTimeout:
                self._unregister(obj)
                self._fail(info, f"load_config took longer than {timeout:g} s")
                return
            except (Exception, SystemExit) as e:  # sys.exit() in a provider must not end the app
                self._unregister(obj)
                self._fail(info, f"load_config raised {type(e).__name__}: {e}")
                return
        self._providers[info.id] = provider

    def _run_provider(
        self, info: ProviderInfo, fn: Callable[[], Any], timeout: float, name: str
    ) -> Any:
        """Run provider code in a worker thread under ``timeout``; its reported problems too."""
        job = _Job(fn, name)
        try:
            return job.result(timeout)
        finally:
            self._report_collected(info, job)

    def _register_with_pluggy(
        self, info: ProviderInfo, obj: Any
    ) -> tuple[dict[str, Any], list[str]]:
        """Register a provider that is not a plain one with pluggy itself (its rules, its
        errors); return its hook implementations as :func:`read_hookimpls` does."""
        if self._pm is None:
            self._pm = pluggy_manager()
        self._pm.register(obj, name=info.id)
        impls: dict[str, Any] = {}
        unknown: list[str] = []
        for caller in self._pm.get_hookcallers(obj) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is obj:
                    if caller.name in HOOK_NAMES:
                        impls[caller.name] = impl
                    else:
                        unknown.append(caller.name)
        return impls, unknown

    def _unregister(self, obj: Any) -> None:
        if self._pm is not None and self._pm.is_registered(obj):
            self._pm.unregister(obj)
