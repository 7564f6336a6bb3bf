"""Find conda environments and the kernel types inside them, without running conda.

Order of precedence (it decides which environment keeps a plain name when two collide,
as ``conda activate NAME`` would pick it):

1. root prefixes (each one is a ``base`` environment): ``root_prefix`` from the config,
   ``CONDA_EXE``, ``CONDA_PYTHON_EXE``, ``MAMBA_ROOT_PREFIX``, the executable's answer;
2. envs dirs: ``CONDA_ENVS_PATH``, ``CONDA_ENVS_DIRS``, ``envs_dirs`` from the config,
   ``envs_dirs`` in ``.condarc`` files (highest priority file first), the executable's
   answer, ``<root>/envs``, ``~/.conda/envs``;
3. the prefixes listed in ``~/.conda/environments.txt``, then the executable's ``envs``.

A folder is an environment when ``conda-meta/history`` exists.

Speed: a cold scan is per environment one ``stat`` (``conda-meta/history``), one ``stat``
and one listing (``share/jupyter/kernels``) and per kernelspec one open/fstat/read/close
(``kernel.json``); the Python work around those calls is kept to string concatenation and
dict/list building (no pathlib, no regex on the common path, one parse of each kernel.json
from the bytes read). The in-memory cache holds a ``marshal`` image of the records, so a
listing gets its own objects without a copy in Python.
"""

from __future__ import annotations

import json
import marshal
import os
import re
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from . import _condarc
from ._cache import Watch, load_json, save_json, unchanged, user_cache_dir
from ._config import ENV_CACHE_DIR, CondaConfig
from ._env_kernels import EnvKernels, python_path
from ._environments import _HISTORY, CondaEnv, EnvironmentListing, _home

__all__ = [
    "CondaEnv",
    "DiscoveryResult",
    "clear_memory",
    "discover",
    "python_path",
    "sanitize",
    "scan",
]

CACHE_FORMAT = 2  # 2: records say supported_encryption for ipykernel >= 7.3
#: Environment variables that change what a scan finds (part of the cache key).
_ENV_KEYS = (
    "HOME",
    "USERPROFILE",
    "XDG_CONFIG_HOME",
    "CONDARC",
    "CONDA_EXE",
    "CONDA_PYTHON_EXE",
    "MAMBA_ROOT_PREFIX",
    "MAMBA_EXE",
    "CONDA_ENVS_PATH",
    "CONDA_ENVS_DIRS",
    "CONDA_PREFIX",
)
_NAME_BAD = re.compile(r"[^a-z0-9._-]+")
#: Names sanitize() returns unchanged: [a-z0-9._-], no "-" at either end.
_NAME_CLEAN = re.compile(r"[a-z0-9._](?:[a-z0-9._-]*[a-z0-9._])?")
#: marshal format of the in-memory cache (3+: strings shared, fast; see _freeze).
_MARSHAL_VERSION = 4

try:  # the same digest as hashlib.sha1, without importing hashlib (OpenSSL) for one key
    from _sha1 import sha1 as _sha1
except ImportError:  # pragma: no cover - an interpreter without the builtin module
    from hashlib import sha1 as _sha1

DiscoveryResult = dict[str, Any]  # {"kernels": [...], "watch": {...}, "warnings": [...], ...}


def sanitize(name: str) -> str:
    """A kernel-name-safe form of ``name``: lower case, runs of other characters → ``-``."""
    if _NAME_CLEAN.fullmatch(name):  # the usual environment name: nothing to change
        return name
    return _NAME_BAD.sub("-", name.lower()).strip("-") or "env"


class _Scan(EnvKernels, EnvironmentListing):
    """One discovery pass: everything it reads is recorded in ``self.watch``."""

    def __init__(self, cfg: CondaConfig, environ: Mapping[str, str]) -> None:
        self.cfg = cfg
        self.environ = environ
        self.watch = Watch()
        self.warnings: list[str] = []
        self.home = _home(environ)
        self.idents: dict[str, tuple[int, int] | None] = {}
        from kernel_mgmt import kernelspec

        self.kernelspec = kernelspec
        self.parse = kernelspec.parse_kernel_spec
        self.name_ok = kernelspec.NAME_RE.match

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def run(self, exe_info: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        cfg = self.cfg
        try:
            st = os.stat(sys.prefix + _HISTORY)
            current: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            current = None  # not running from a conda environment
        records: list[dict[str, Any]] = []
        used: set[str] = set()
        name_format = cfg.name_format
        default_format = name_format == "{env}-{kernel}"
        include_base = cfg.include_base
        include_current = cfg.include_current
        # cfg.excluded(), skipped when there is no env_filter (the usual case).
        excluded = cfg.excluded if cfg._filter_re is not None else None
        labels: set[str] = set()
        env_kernels = self.env_kernels
        for env in self.environments(exe_info):
            is_base = env.is_base
            if is_base and not include_base:
                continue
            prefix = env.prefix
            if excluded is not None and excluded(prefix):
                continue
            if env.ident == current and not include_current:
                continue  # the spec and pyimport providers already list this env's kernels
            kernels = env_kernels(env)
            if not kernels:
                continue
            env_name = env.name
            # self.env_label(env), inlined
            label = env_name if env.named else self.path_label(prefix)
            if label in labels:
                # An environment earlier in precedence (the one `conda activate <name>`
                # picks) already shows this name: say where this one is instead, so no
                # two environments look alike in a kernel menu.
                label = self.path_label(prefix)
            labels.add(label)
            suffix = f" (conda: {label})"
            env_part = sanitize(env_name)
            root_prefix = env.root_prefix
            default_env = env_name if env.named else prefix
            for key, attrs in kernels:
                if default_format and key[-1] != "\n":
                    # sanitize() of "<sanitized env>-<kernelspec name>": both parts are
                    # already [a-z0-9._-] (NAME_RE's "$" lets a final newline through:
                    # not here) and the env part has no leading "-".
                    name = f"{env_part}-{key}".rstrip("-")
                else:
                    name = sanitize(name_format.format(env=env_part, kernel=key))
                if name in used:
                    # Later in precedence than an env of the same name: a stable suffix.
                    base = f"{name}-{_sha1(prefix.encode()).hexdigest()[:6]}"
                    name, n = base, 2
                    while name in used:
                        name, n = f"{base}-{n}", n + 1
                used.add(name)
                attrs["display_name"] = attrs["display_name"] + suffix
                # Ours to change: parsed for this record alone (or built just above).
                metadata = attrs["metadata"] = attrs.get("metadata") or {}
                metadata["conda"] = {
                    "env_name": env_name,
                    "env_prefix": prefix,
                    "is_base": is_base,
                    "kernelspec": key if "resource_dir" in attrs else None,
                    "root_prefix": root_prefix,
                }
                # The names nb_conda_kernels used, for tools that read them.
                metadata["conda_env_name"] = env_name
                metadata["conda_env_path"] = prefix
                records.append(
                    {
                        "name": name,
                        "attributes": attrs,
                        "env": {
                            "prefix": prefix,
                            "name": env_name,
                            "default_env": default_env,
                            "root_prefix": root_prefix,
                        },
                    }
                )
        return records


def scan(cfg: CondaConfig, environ: Mapping[str, str]) -> DiscoveryResult:
    """Discover every kernel type now (no cache); see the module docstring for the order."""
    # The variables a scan reads as a plain dict (a lookup in os.environ decodes and
    # encodes); only _ENV_KEYS, the variables in the cache key, may shape a scan anyway.
    get = environ.get
    s = _Scan(cfg, {k: v for k in _ENV_KEYS if (v := get(k)) is not None})
    exe_info = None
    if cfg.conda_executable:
        from ._exe import CondaExecutableError, conda_info, resolve_executable

        try:
            exe = resolve_executable(cfg.conda_executable, environ)
            exe_info = conda_info(
                exe,
                cfg.executable_timeout,
                cfg.cache_ttl,
                cache_directory(cfg, environ),
                os.path.join(s.home, ".conda", "environments.txt"),
            )
        except CondaExecutableError as e:
            s.warn(f"{e}; using the environments found on disk")
    kernels = s.run(exe_info)
    return {
        "format": CACHE_FORMAT,
        "created": time.time(),
        "racy": s.watch.racy(),
        "kernels": kernels,
        "watch": s.watch.sigs,
        "warnings": s.warnings,
    }


# -- caching ----------------------------------------------------------------------------
#: key -> cached result, its records kept as a marshal image (see _freeze).
_memory: dict[str, DiscoveryResult] = {}
_lock = threading.Lock()
#: Disk cache files to write: path -> frozen result. Written at interpreter exit (or by
#: flush()), so that a cold listing does not pay for serialising its result.
_pending: dict[str, DiscoveryResult] = {}
_atexit_registered = False
_keys: dict[tuple[Any, ...], tuple[CondaConfig, str]] = {}


def _freeze(result: DiscoveryResult) -> DiscoveryResult:
    """The cached form of a result: its records as an immutable marshal image.

    The records go to the caller as they are; every later hit gets its own copy from the
    image (C speed, unlike a copy in Python), so a caller changing what it was given
    cannot change the cache. The records hold only JSON values and share no mutable
    objects, which marshal reproduces exactly.
    """
    frozen = dict(result)
    frozen["kernels"] = marshal.dumps(result["kernels"], _MARSHAL_VERSION)
    return frozen


def _thaw(entry: DiscoveryResult) -> DiscoveryResult:
    """A result with its own copy of the records of a cached (frozen) entry."""
    result = dict(entry)
    result["kernels"] = marshal.loads(entry["kernels"])
    return result


def flush() -> None:
    """Write the pending disk cache files now (done automatically at interpreter exit)."""
    while _pending:
        path, entry = _pending.popitem()
        save_json(path, _thaw(entry))


def _schedule_write(path: str, entry: DiscoveryResult) -> None:
    global _atexit_registered
    _pending[path] = entry
    if not _atexit_registered:
        import atexit

        atexit.register(flush)
        _atexit_registered = True


def cache_directory(cfg: CondaConfig, environ: Mapping[str, str]) -> str | None:
    """Where discovery results are kept on disk (None: disk cache off)."""
    if cfg.cache_ttl <= 0:
        return None
    if cfg.cache_dir:
        return os.path.expanduser(cfg.cache_dir)
    if environ.get(ENV_CACHE_DIR):
        return environ[ENV_CACHE_DIR]
    return os.path.join(user_cache_dir(), "conda")


def cache_key(cfg: CondaConfig, environ: Mapping[str, str]) -> str:
    """Hash of everything besides the watched files that shapes a scan's result.

    Memoised on its inputs (the settings object, the variables, ``sys.prefix`` and the
    system config dirs): hashing JSON on every call would cost more than the lookup.
    """
    get = environ.get
    values = [get(k) for k in _ENV_KEYS]
    path = get("PATH") if cfg.conda_executable else None
    # id(cfg): the settings object is kept in the memo entry, so its id is not reused.
    inputs = (id(cfg), *values, path, sys.prefix, tuple(_condarc.SYSTEM_DIRS))
    hit = _keys.get(inputs)
    if hit is not None and hit[0] is cfg:
        return hit[1]
    from ._version import __version__

    parts = [
        CACHE_FORMAT,
        __version__,
        cfg.fingerprint(),
        values,
        path,
        sys.prefix,
        list(_condarc.SYSTEM_DIRS),
    ]
    key = _sha1(json.dumps(parts).encode()).hexdigest()
    if len(_keys) > 64:  # settings or variables changing all the time: stay small
        _keys.clear()
    _keys[inputs] = (cfg, key)
    return key


def _fresh(entry: Any, ttl: float, now: float) -> bool:
    """Whether a cached result (possibly a damaged file's content) may be used now."""
    try:
        if entry.get("format") != CACHE_FORMAT or type(entry["kernels"]) not in (list, bytes):
            return False
        age = now - entry["created"]
        limit = min(ttl, 1.0) if entry.get("racy") else ttl
        return 0 <= age < limit and unchanged(entry["watch"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return False


def discover(cfg: CondaConfig, environ: Mapping[str, str] | None = None) -> DiscoveryResult:
    """Discovery result from memory, then disk, then a fresh scan; new warnings are emitted.

    The result's records are the caller's own (changing them changes no cache). Warnings
    are emitted when a scan runs, and on cache hits only inside a finder's call (so that
    every finder lists them as this provider's problems), not on every cached call.
    """
    environ = os.environ if environ is None else environ
    key = cache_key(cfg, environ)
    now = time.time()
    ttl = cfg.cache_ttl
    scanned = False
    with _lock:
        entry = _memory.get(key)
        if ttl > 0 and _fresh(entry, ttl, now):
            result = _thaw(entry)  # type: ignore[arg-type]
        else:
            folder = cache_directory(cfg, environ)
            disk = os.path.join(folder, f"kernels-{key[:20]}.json") if folder else None
            entry = load_json(disk) if disk else None
            if disk and _fresh(entry, ttl, now):
                _memory[key] = _freeze(entry)  # type: ignore[arg-type]
            else:
                entry = scan(cfg, environ)
                scanned = True
                if ttl > 0:
                    frozen = _memory[key] = _freeze(entry)
                    if disk:
                        _schedule_write(disk, frozen)
            result = entry  # type: ignore[assignment]
    if result["warnings"] and (scanned or _in_finder_call()):
        from ._util import report

        for message in result["warnings"]:
            report(message)
    return result


def _in_finder_call() -> bool:
    from kernel_mgmt.discovery import problems_captured  # loaded already when a finder runs

    return problems_captured()


def clear_memory() -> None:
    """Forget in-memory results, as a new process would (tests and benchmarks use it).

    Pending disk cache files are written first, as at the end of a process.
    """
    with _lock:
        flush()
        _memory.clear()
    from . import _exe

    _exe.clear_memory()
