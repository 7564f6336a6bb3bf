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
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import pluggy

from . import hookspecs
from .config import DEFAULT_TIMEOUT, ConfigError, load_config, providers_section

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_PROVIDERS",
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

LOGGER_NAME = "kernel_mgmt.discovery"

ENTRY_POINT_GROUP = "kernel_mgmt"
OLD_ENTRY_POINT_GROUP = "jupyter_kernel_mgmt.kernel_type_providers"
#: Comma-separated provider ids to load (all others are not even imported); "" loads none.
ENV_PROVIDERS = "KERNEL_MGMT_PROVIDERS"
PROVIDER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
HOOK_NAMES = ("load_config", "find_kernels", "launch")
_BAD_NAME_RE = re.compile(r"[/\s]")


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


class InvalidLaunchParams(ValueError):
    """``launch_params`` that do not match the kernel type's ``launch_parameter_schema``."""

    def __init__(self, kernel: str, field: str | None, problem: str) -> None:
        self.kernel = kernel
        self.field = field
        self.problem = problem
        where = f" field {field!r}" if field else ""
        super().__init__(f"invalid launch_params for kernel {kernel!r}:{where} {problem}")


class KernelProviderBase:
    """Seed-style base class: subclass it, set ``id``, override the methods (no decorators).

    The finder treats the overridden ``find_kernels``/``launch``/``load_config`` as the
    provider's hook implementations.
    """

    #: Provider id: ``[a-z0-9][a-z0-9._-]*``, no ``/``; equals the entry-point name.
    id: str = ""

    def load_config(self, config: Mapping[str, Any] | None = None) -> None:
        """Receive the merged configuration before any other call (default: ignore it)."""

    def find_kernels(self) -> Iterable[tuple[str, dict[str, Any]]]:
        """Yield ``(name, attributes)`` for each kernel type this provider offers."""
        raise NotImplementedError

    async def launch(
        self, name: str, cwd: str | None = None, launch_params: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], Any]:
        """Start kernel type ``name``; return ``(connection_info, kernel_manager)``.

        Add a ``kernel_id=None`` parameter to receive the application's kernel id.
        """
        raise NotImplementedError


class Problem:
    """Something wrong with one provider, as reported to users."""

    __slots__ = ("distribution", "message", "provider", "version")

    def __init__(
        self, provider: str, distribution: str | None, version: str | None, message: str
    ) -> None:
        self.provider = provider
        self.distribution = distribution
        self.version = version
        self.message = message

    def __repr__(self) -> str:
        return (
            f"Problem({self.provider!r}, {self.distribution!r}, {self.version!r}, {self.message!r})"
        )

    def __str__(self) -> str:
        dist = _dist_label(self.distribution, self.version)
        return f"provider {self.provider!r} ({dist}): {self.message}"


class ProviderInfo:
    """What ``kernel-mgmt providers`` shows for one provider.

    ``status`` is "ok", "failed" or "disabled" (not selected); ``reason`` says why.
    (A plain class, not a dataclass: importing dataclasses costs the CLI ~3 ms.)
    """

    def __init__(
        self,
        id: str,
        distribution: str | None = None,
        version: str | None = None,
        group: str | None = None,
        value: str | None = None,
    ) -> None:
        self.id = id
        self.distribution = distribution
        self.version = version
        self.group = group
        self.value = value
        self.status = "ok"
        self.reason = ""
        self.hooks: list[str] = []
        self.kernels: int | None = None
        self.problems: list[str] = []
        #: What the provider says about its state when nothing is wrong (report_note).
        self.note = ""

    def __repr__(self) -> str:
        return f"<ProviderInfo {self.id!r} {self.status} {self.reason!r}>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": f"{self.group}: {self.value}" if self.group else None,
            "status": self.status,
            "reason": self.reason,
            "hooks": list(self.hooks),
            "kernels": self.kernels,
            "problems": list(self.problems),
            "note": self.note,
        }


def _dist_label(name: str | None, version: str | None) -> str:
    if not name:
        return "in-process"
    return f"{name} {version}" if version else name


# --------------------------------------------------------------------------------------------
# Entry points: a fast scanner over sys.path. importlib.metadata costs ~45 ms per CLI call
# (it imports email, zipfile, csv...); reading *.dist-info/entry_points.txt directly costs ~2.


class _Dist:
    __slots__ = ("_meta_path", "_name", "_version", "folder")

    def __init__(self, folder: str, meta_file: str, name: str, version: str | None) -> None:
        self.folder = folder
        self._meta_path = os.path.join(folder, meta_file)
        self._name = name
        self._version = version

    def _read_meta(self) -> None:
        try:
            with open(self._meta_path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.strip():
                        break  # end of the RFC 822 header block
                    key, _, value = line.partition(":")
                    if key == "Name":
                        self._name = value.strip()
                    elif key == "Version":
                        self._version = value.strip()
        except OSError:
            pass
        self._meta_path = ""

    @property
    def name(self) -> str:
        if self._meta_path:
            self._read_meta()
        return self._name

    @property
    def version(self) -> str | None:
        if self._meta_path:
            self._read_meta()
        return self._version


_EP_VALUE_RE = re.compile(r"^(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?(\[.*\])?\s*$")


class _EntryPoint:
    """The part of ``importlib.metadata.EntryPoint`` the finder uses."""

    __slots__ = ("dist", "group", "name", "value")

    def __init__(self, name: str, value: str, group: str, dist: _Dist | None) -> None:
        self.name = name
        self.value = value
        self.group = group
        self.dist = dist

    def load(self) -> Any:
        import importlib

        match = _EP_VALUE_RE.match(self.value)
        if match is None:
            raise ValueError(f"malformed entry point value {self.value!r}")
        obj: Any = importlib.import_module(match["module"])
        for attr in (match["attr"] or "").split(".") if match["attr"] else ():
            obj = getattr(obj, attr)
        return obj

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _parse_entry_points_txt(text: str, groups: Iterable[str]) -> list[tuple[str, str, str]]:
    wanted = set(groups)
    found: list[tuple[str, str, str]] = []
    group = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[" and line[-1] == "]":
            group = line[1:-1].strip()
            continue
        if group in wanted and "=" in line:
            name, _, value = line.partition("=")
            found.append((group, name.strip(), value.strip()))
    return found


def scan_entry_points(
    groups: Iterable[str] = (ENTRY_POINT_GROUP, OLD_ENTRY_POINT_GROUP),
    path: Iterable[str] | None = None,
) -> list[_EntryPoint]:
    """Entry points of ``groups`` from every distribution on ``path`` (``sys.path``).

    Same result as ``importlib.metadata.entry_points(group=...)``: the first distribution of a
    given (normalized) name on the path wins, as importlib.metadata does.
    """
    groups = tuple(groups)
    seen: set[str] = set()
    result: list[_EntryPoint] = []
    for entry in sys.path if path is None else path:
        base = entry or "."
        try:
            names = os.listdir(base)
        except OSError:
            continue  # zip files and missing directories hold no (unpacked) metadata here
        for folder in names:
            if folder.endswith(".dist-info"):
                meta = "METADATA"
            elif folder.endswith(".egg-info"):
                meta = "PKG-INFO"
            else:
                continue
            stem = folder.rsplit(".", 1)[0]
            dist_name, _, version = stem.partition("-")
            key = _normalize(dist_name)
            if key in seen:
                continue
            seen.add(key)
            full = os.path.join(base, folder)
            try:
                with open(
                    os.path.join(full, "entry_points.txt"), encoding="utf-8", errors="replace"
                ) as f:
                    text = f.read()
            except OSError:
                continue
            if not any(f"[{g}]" in text for g in groups):
                continue
            version = version.split("-", 1)[0] or None  # egg-info: name-1.0-py3.11
            dist = _Dist(full, meta, dist_name, version)
            for group, name, value in _parse_entry_points_txt(text, groups):
                result.append(_EntryPoint(name, value, group, dist))
    return result


# --------------------------------------------------------------------------------------------
# Problems a provider reports while the finder runs one of its hooks. Each hook call runs in
# its own worker thread, which owns a sink (a list) for the duration of the call: no logging
# handler, so the application's logging configuration neither changes nor matters.

_sinks: dict[int, list[str]] = {}  # worker thread id -> problems reported on it
_sinks_lock = threading.Lock()


def report_problem(message: str) -> None:
    """Report a problem of the calling provider, e.g. a skipped file (the message names it).

    Inside a provider hook that a :class:`KernelFinder` runs (importing the provider,
    ``load_config``, ``find_kernels``), it is listed as that provider's problem in
    :attr:`KernelFinder.problems` and ``kernel-mgmt providers`` (and logged once by the
    finder). Elsewhere it is logged as a warning on the ``kernel_mgmt.discovery`` logger.
    Call it from the hook's own thread: a helper thread's reports are only logged.
    """
    sink = _sinks.get(threading.get_ident())
    if sink is not None:
        sink.append(str(message))
        return
    import logging  # deferred: only needed when something is wrong

    logging.getLogger(LOGGER_NAME).warning("%s", message)


class _Note(str):
    """A message passed to :func:`report_note` (kept apart from problems in the sink)."""

    __slots__ = ()


def report_note(message: str) -> None:
    """Say something about the calling provider's state that is not a problem.

    For example "not configured, so no kernel types: set ...". Inside a provider hook a
    :class:`KernelFinder` runs, it becomes :attr:`ProviderInfo.note` (shown as the reason of
    an ``ok`` provider by ``kernel-mgmt providers``); it is neither logged nor listed among
    the problems. Elsewhere it is ignored.
    """
    sink = _sinks.get(threading.get_ident())
    if sink is not None:
        sink.append(_Note(message))


def problems_captured() -> bool:
    """Whether :func:`report_problem` on this thread is recorded as a provider's problem.

    True inside a provider hook that a :class:`KernelFinder` runs. A provider that warns
    about a problem only once per process should report it on every call while this is
    true, so that every finder lists it.
    """
    return threading.get_ident() in _sinks


# --------------------------------------------------------------------------------------------
# Running provider code under a timeout.


class ProviderTimeout(TimeoutError):
    """A provider's hook call did not return within the timeout."""


class _Claim(NamedTuple):
    """One package's claim on a provider id (an entry point, possibly under both groups)."""

    distribution: str | None
    version: str | None
    value: str | None
    new_group: bool  # under ``kernel_mgmt`` (else only under the old group)

    def label(self) -> str:
        return f"{_dist_label(self.distribution, self.version)} ({self.value})"


class _Job:
    """Run ``fn`` in a daemon thread so that a hung provider cannot hang the caller."""

    __slots__ = ("_done", "_error", "_value", "lock", "processed", "reported", "started", "thread")

    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        self.started = time.monotonic()
        # For find jobs shared by concurrent callers: the first one validates the records.
        self.lock = threading.Lock()
        self.processed: list[tuple[str, dict[str, Any]]] | None = None
        #: Messages the provider passed to report_problem() on the job's thread.
        self.reported: list[str] = []
        # daemon: a provider stuck forever must not keep the interpreter from exiting
        self.thread = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        ident = threading.get_ident()
        with _sinks_lock:
            _sinks[ident] = self.reported
        try:
            self._value = fn()
        except BaseException as e:
            self._error = e
        finally:
            with _sinks_lock:
                _sinks.pop(ident, None)
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float) -> Any:
        if not self._done.wait(max(timeout, 0.0)):
            raise ProviderTimeout
        if self._error is not None:
            raise self._error
        return self._value


def _collect_records(result: Any) -> list[Any]:
    """Turn whatever ``find_kernels`` returned into a list (runs in the worker thread)."""
    if result is None:
        return []
    if hasattr(result, "__anext__"):  # async generator: drain it in a private loop
        import asyncio

        async def drain() -> list[Any]:
            return [item async for item in result]

        return asyncio.run(drain())
    if hasattr(result, "__await__"):  # coroutine returning an iterable
        import asyncio

        async def wait() -> Any:
            return await result

        result = asyncio.run(wait())
        if result is None:
            return []
    return list(result)


def _call_impl(impl: Any, **kwargs: Any) -> Any:
    """Call a hookimpl with the subset of arguments it declares (pluggy's convention)."""
    accepted = set(impl.argnames) | set(impl.kwargnames)
    return impl.function(**{k: v for k, v in kwargs.items() if k in accepted})


class _PluginManager(pluggy.PluginManager):
    """Also treats a KernelProviderBase subclass's overridden methods as hook implementations."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if (
            opts is None
            and name in HOOK_NAMES
            and isinstance(plugin, KernelProviderBase)
            and getattr(type(plugin), name) is not getattr(KernelProviderBase, name)
        ):
            return {}
        return opts


class _Provider:
    """A registered provider: its object, hook implementations and status."""

    def __init__(self, info: ProviderInfo) -> None:
        self.info = info
        self.plugin: Any = None
        self.impls: dict[str, Any] = {}
        self.busy: _Job | None = None
        self.kernels: dict[str, dict[str, Any]] = {}

    @property
    def id(self) -> str:
        return self.info.id


def _module_provider_id(obj: Any) -> str | None:
    provider_id = getattr(obj, "id", None)
    if isinstance(provider_id, str) and provider_id:
        return provider_id
    module_name = getattr(obj, "__name__", None) if isinstance(obj, type(sys)) else None
    if module_name:
        return module_name.rsplit(".", 1)[-1].removeprefix("kernel_mgmt_provider_")
    return None


def _apply_defaults(schema: Mapping[str, Any], instance: Any) -> None:
    """Fill in ``default`` values of (nested) object properties, in place."""
    if not isinstance(instance, dict) or not isinstance(schema, Mapping):
        return
    for key, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, Mapping):
            continue
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _apply_defaults(sub, instance[key])


def validate_launch_params(
    kernel: str, attributes: Mapping[str, Any], launch_params: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Check ``launch_params`` against the kernel's ``metadata.launch_parameter_schema``.

    Returns the parameters with the schema's defaults filled in (``launch_params`` unchanged,
    or None, when the kernel type declares no schema).

    :raises InvalidLaunchParams: naming the kernel type and the offending field.
    """
    if launch_params is not None and not isinstance(launch_params, Mapping):
        what = type(launch_params).__name__
        raise InvalidLaunchParams(kernel, None, f"must be a mapping, not {what}")
    metadata = attributes.get("metadata") or {}
    schema = metadata.get("launch_parameter_schema") if isinstance(metadata, Mapping) else None
    if not schema:
        return dict(launch_params) if launch_params is not None else None
    import jsonschema  # deferred: only launches with a parameter schema pay for it

    # A deep copy: defaults are filled into nested objects, and the caller's dict stays as is.
    params: dict[str, Any] = copy.deepcopy(dict(launch_params or {}))
    _apply_defaults(schema, params)
    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise InvalidLaunchParams(
            kernel, None, f"the kernel's launch_parameter_schema is itself invalid: {e.message}"
        ) from None
    error = jsonschema.exceptions.best_match(validator_cls(schema).iter_errors(params))
    if error is not None:
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, Mapping):
            missing = [k for k in error.validator_value if k not in error.instance]
            path.extend(missing[:1])
        elif error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            allowed = set((error.schema or {}).get("properties", {}))
            path.extend(sorted(set(error.instance) - allowed)[:1])
        raise InvalidLaunchParams(kernel, ".".join(path) or None, error.message)
    return params


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


class KernelFinder:
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
        #: Default seconds per hook call of a provider.
        self.timeout = float(
            timeout if timeout is not None else section.get("timeout", DEFAULT_TIMEOUT)
        )
        self._timeouts = {k: float(v) for k, v in (section.get("timeouts") or {}).items()}
        self._pm = _PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
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
        other = self._pm.get_name(obj) if self._pm.is_registered(obj) else None
        if other is not None:
            self._fail(
                info,
                f"its entry point ({info.value}) names the same object as provider {other!r}; "
                "one object can be one provider only",
            )
            return
        try:
            self._pm.register(obj, name=info.id)
        except Exception as e:
            self._fail(info, f"invalid hook implementation: {e}".replace("\n", " "))
            return
        impls: dict[str, Any] = {}
        unknown: list[str] = []
        for caller in self._pm.get_hookcallers(obj) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is obj:
                    if caller.name in HOOK_NAMES:
                        impls[caller.name] = impl
                    else:
                        unknown.append(caller.name)
        provider.plugin = obj
        provider.impls = impls
        info.hooks = [h for h in HOOK_NAMES if h in impls]
        if "find_kernels" not in impls:
            self._pm.unregister(obj)
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
                    lambda: _call_impl(impls["load_config"], config=self.config),
                    timeout,
                    f"kernel_mgmt-config-{info.id}",
                )
            except ProviderTimeout:
                self._pm.unregister(obj)
                self._fail(info, f"load_config took longer than {timeout:g} s")
                return
            except (Exception, SystemExit) as e:  # sys.exit() in a provider must not end the app
                self._pm.unregister(obj)
                self._fail(info, f"load_config raised {type(e).__name__}: {e}")
                return
        self._providers[info.id] = provider

    # -- reporting ----------------------------------------------------------------------------

    def _run_provider(
        self, info: ProviderInfo, fn: Callable[[], Any], timeout: float, name: str
    ) -> Any:
        """Run provider code in a worker thread under ``timeout``; its reported problems too."""
        job = _Job(fn, name)
        try:
            return job.result(timeout)
        finally:
            self._report_collected(info, job)

    def _report_collected(self, info: ProviderInfo, job: _Job) -> None:
        """Record each problem the provider reported with report_problem() during the job
        (and its latest report_note())."""
        for message in list(job.reported):  # a copy: a timed-out job may still be reporting
            if isinstance(message, _Note):
                info.note = str(message)
            else:
                self._report(info, message)

    def _report(self, info: ProviderInfo, message: str) -> None:
        """Record and log a problem, once per provider and message."""
        with self._lock:
            if message not in info.problems:
                info.problems.append(message)
            key = (info.id, message)
            if key in self._reported:
                return
            self._reported.add(key)
            problem = Problem(info.id, info.distribution, info.version, message)
            self._problems.append(problem)
        import logging  # deferred: only needed when something is wrong

        logging.getLogger(LOGGER_NAME).warning("%s", problem)

    def _fail(self, info: ProviderInfo, message: str) -> None:
        info.status, info.reason = "failed", message
        if not any(p.info is info for p in self._all):
            self._all.append(_Provider(info))
        self._report(info, message)

    @property
    def problems(self) -> list[Problem]:
        """Every problem reported so far (each once), oldest first."""
        return list(self._problems)

    @property
    def providers(self) -> list[ProviderInfo]:
        """Status of every provider seen: loaded, failed or disabled, sorted by id."""
        return sorted((p.info for p in self._all), key=lambda i: (i.id, i.distribution or ""))

    # -- finding ------------------------------------------------------------------------------

    def _start_find(self, provider: _Provider) -> _Job | None:
        """Start the provider's find_kernels, or join the call already in flight."""
        with self._lock:
            job = provider.busy
            if job is not None and not job.done():
                if time.monotonic() - job.started < self.timeout_for(provider.id):
                    return job  # concurrent finds and cold launches share one call
                stuck = True
            else:
                stuck = False
                impl = provider.impls["find_kernels"]
                job = _Job(
                    lambda: _collect_records(_call_impl(impl)), f"kernel_mgmt-find-{provider.id}"
                )
                provider.busy = job
        if stuck:
            provider.info.status = "failed"
            self._report(
                provider.info,
                "find_kernels is still running from an earlier call (it exceeded the timeout)",
            )
            return None
        return job

    def _finish_find(self, provider: _Provider, job: _Job) -> list[tuple[str, dict[str, Any]]]:
        """Wait (until the job's deadline) for a find job, then validate its records once."""
        with job.lock:
            if job.processed is None:
                job.processed = self._process_find(provider, job)
            return job.processed

    def _process_find(self, provider: _Provider, job: _Job) -> list[tuple[str, dict[str, Any]]]:
        provider.info.note = ""  # each listing says it anew
        try:
            return self._check_find(provider, job)
        finally:
            self._report_collected(provider.info, job)

    def _check_find(self, provider: _Provider, job: _Job) -> list[tuple[str, dict[str, Any]]]:
        info = provider.info
        timeout = self.timeout_for(provider.id)
        try:
            records = job.result(job.started + timeout - time.monotonic())
        except ProviderTimeout:
            info.status = "failed"
            info.reason = f"find_kernels took longer than {timeout:g} s"
            self._report(info, info.reason)
            return []
        except (Exception, SystemExit) as e:  # sys.exit() in a provider must not end the app
            info.status = "failed"
            info.reason = f"find_kernels raised {type(e).__name__}: {e}"
            self._report(info, info.reason)
            return []
        info.status, info.reason = "ok", ""
        good: dict[str, dict[str, Any]] = {}
        for record in records:
            checked = self._check_record(info, record, good)
            if checked is not None:
                good[checked[0]] = checked[1]
        provider.kernels = good
        info.kernels = len(good)
        return list(good.items())

    def _check_record(
        self, info: ProviderInfo, record: Any, seen: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]] | None:
        """Validate and normalise one ``(name, attributes)`` record; None (reported) if bad.

        ``type(x) is`` fast paths first: this runs for every kernel on every listing, and
        ``isinstance(x, Mapping)`` (an ABC check) is several times slower.
        """
        if not isinstance(record, (tuple, list)) or len(record) != 2:
            self._report(
                info, f"find_kernels yielded {record!r:.80}, not a (name, attributes) pair"
            )
            return None
        name, attrs = record
        if type(name) is not str or not name or _BAD_NAME_RE.search(name):
            self._report(
                info, f"kernel name {name!r:.80} must be a non-empty string without '/' or spaces"
            )
            return None
        if type(attrs) is not dict and not isinstance(attrs, Mapping):
            self._report(
                info, f"kernel {name!r}: attributes must be a dict, not {type(attrs).__name__}"
            )
            return None
        if name in seen:
            self._report(info, f"kernel {name!r} yielded twice; keeping the first")
            return None
        if type(attrs.get("display_name")) is not str:
            self._report(info, f"kernel {name!r}: 'display_name' must be a string")
            return None
        language = attrs.get("language")
        language_info = attrs.get("language_info")
        has_info = type(language_info) is dict or isinstance(language_info, Mapping)
        fixes: dict[str, Any] = {}
        if type(language) is str:
            if not has_info:
                fixes["language_info"] = {"name": language}
        elif isinstance(language, Mapping) and isinstance(language.get("name"), str):
            # The seed's oblong example passes language as {"name": ...}: accept it.
            fixes["language"] = language["name"]
            if not has_info:
                fixes["language_info"] = dict(language)
        else:
            self._report(info, f"kernel {name!r}: 'language' must be a string")
            return None
        metadata = attrs.get("metadata")
        if (
            metadata is not None
            and type(metadata) is not dict
            and not isinstance(metadata, Mapping)
        ):
            self._report(info, f"kernel {name!r}: 'metadata' must be a dict")
            return None
        # Copy only when something changes: the spec provider's records are already complete.
        if fixes or type(attrs) is not dict:
            attrs = {**attrs, **fixes}
        return name, attrs

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
    ) -> tuple[dict[str, Any], Any]:
        """Launch kernel type ``name`` through the provider owning its prefix.

        ``launch_params`` are validated against the type's ``launch_parameter_schema`` (with
        defaults applied) before the provider is called, so nothing starts when they are wrong.
        ``kernel_id`` (e.g. to keep an id across a restart) reaches providers whose launch
        hook accepts it. Concurrent launches share one ``find_kernels`` call of the provider.

        :returns: ``(connection_info, kernel_manager)`` from the provider.
        :raises NoSuchKernel: unknown provider or kernel type.
        :raises InvalidLaunchParams: parameters that do not match the schema.
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
        result = _call_impl(impl, name=kernel_name, cwd=cwd, launch_params=params, **kwargs)
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


#: The seed's ``jupyter_kernel_mgmt.discovery`` classes that now live in provider packages:
#: name -> (provider id, distribution to install).
_PROVIDER_CLASSES = {
    "KernelSpecProvider": ("spec", "kernel-mgmt-provider-spec"),
    "IPykernelProvider": ("pyimport", "kernel-mgmt-provider-pyimport"),
}


class ProviderClassUnavailable(AttributeError):
    """``KernelSpecProvider`` or ``IPykernelProvider`` was requested from this module, but
    the provider package that holds it is not installed (the message says what to install).

    An AttributeError, so that ``hasattr(discovery, name)`` is False. Python turns an
    AttributeError in ``from kernel_mgmt.discovery import name`` into a bare "cannot import
    name" ImportError, so inside that statement an ImportError with this message is raised.
    """


def _unavailable(name: str, why: str) -> Exception:
    """The error for a compat class that cannot be had: ImportError in ``from ... import``."""
    message = f"cannot import name {name!r} from {__name__!r}: {why}"
    try:
        import opcode

        frame = sys._getframe(2)  # 0: here, 1: __getattr__, 2: the code doing the look-up
        importing = frame.f_code.co_code[frame.f_lasti] == opcode.opmap["IMPORT_FROM"]
    except Exception:  # another interpreter: the AttributeError still carries the hint
        importing = False
    if importing:
        return ImportError(message, name=__name__)
    return ProviderClassUnavailable(message, name=name, obj=sys.modules[__name__])


def __getattr__(name: str) -> Any:
    """``from kernel_mgmt.discovery import KernelSpecProvider`` (or ``IPykernelProvider``).

    The seed documents both classes in ``discovery``. Core never imports a provider: on this
    explicit request it loads the installed one through its ``kernel_mgmt`` entry point and
    returns the class of that name from it (nothing happens at import time).
    """
    compat = _PROVIDER_CLASSES.get(name)
    if compat is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    provider_id, distribution = compat
    ep = next((e for e in scan_entry_points((ENTRY_POINT_GROUP,)) if e.name == provider_id), None)
    if ep is None:
        raise _unavailable(
            name,
            f"it belongs to the {provider_id!r} provider, which is not installed; install it "
            f"with `pip install {distribution}`",
        )
    loaded = ep.load()  # the provider's module (or, for an entry point naming it, the class)
    cls = loaded if getattr(loaded, "__name__", None) == name else getattr(loaded, name, None)
    if cls is None:
        raise _unavailable(
            name,
            f"the installed {provider_id!r} provider ({ep.value}) has no {name}; "
            f"reinstall {distribution}",
        )
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
