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

import hashlib
import json
import marshal
import os
import re
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import _condarc
from ._cache import Watch, load_json, save_json, unchanged
from ._config import ENV_CACHE_DIR, CondaConfig

__all__ = ["CondaEnv", "DiscoveryResult", "clear_memory", "discover", "scan"]

CACHE_FORMAT = 1
WIN = sys.platform == "win32"
SEP = os.sep
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
_PYTHON_LANG = "python"
_HISTORY = SEP + os.path.join("conda-meta", "history")
_KERNELS = SEP + os.path.join("share", "jupyter", "kernels")
_KERNEL_JSON = SEP + "kernel.json"
#: argv[0] meaning "a Python" (resolved to the environment's interpreter).
_BARE_PYTHON = re.compile(r"python(3(\.\d+)?)?")
_BARE_PYTHON_COMMON = frozenset(("python", "python3"))
#: marshal format of the in-memory cache (3+: strings shared, fast; see _freeze).
_MARSHAL_VERSION = 4
_stat = os.stat

DiscoveryResult = dict[str, Any]  # {"kernels": [...], "watch": {...}, "warnings": [...], ...}


@dataclass(slots=True)
class CondaEnv:
    """One environment found on disk."""

    prefix: str
    name: str  # conda's name: "base", the folder name, or (path-only envs) the folder name
    named: bool  # in an envs dir or a root: ``conda activate <name>`` works
    is_base: bool
    root_prefix: str | None
    source: str  # where it was found, for messages
    ident: tuple[int, int]  # (st_dev, st_ino) of conda-meta/history


def _home(environ: Mapping[str, str]) -> str:
    return environ.get("HOME") or environ.get("USERPROFILE") or os.path.expanduser("~")


def _norm(path: str) -> str:
    if not WIN and path[:1] == "/":  # abspath() of an absolute path, normcase() a no-op
        return _normpath(path)
    return os.path.normcase(os.path.abspath(path))


def _normpath(path: str) -> str:
    """``os.path.normpath`` of an absolute path, skipping the (pure Python, 3.11) call when
    the path has nothing to normalise (no ``//``, ``.``/``..`` component or trailing ``/``)."""
    if WIN or "//" in path or "/." in path or path.endswith("/"):
        return os.path.normpath(path)
    return path


def _root_from_exe(exe: str) -> str:
    """``<root>/bin/conda`` → ``<root>`` (``Scripts``/``condabin``/``Library/bin`` too)."""
    parent = os.path.dirname(os.path.abspath(exe))
    if os.path.basename(parent).lower() in ("bin", "scripts", "condabin"):
        parent = os.path.dirname(parent)
        if os.path.basename(parent).lower() == "library":  # Windows: <root>/Library/bin
            parent = os.path.dirname(parent)
    return parent


def sanitize(name: str) -> str:
    """A kernel-name-safe form of ``name``: lower case, runs of other characters → ``-``."""
    if _NAME_CLEAN.fullmatch(name):  # the usual environment name: nothing to change
        return name
    return _NAME_BAD.sub("-", name.lower()).strip("-") or "env"


def python_path(prefix: str) -> str:
    """The environment's Python interpreter."""
    if WIN:
        return os.path.join(prefix, "python.exe")
    # os.path.join(prefix, "bin", "python") without its (pure Python) cost.
    return prefix + ("bin/python" if prefix.endswith("/") else "/bin/python")


class _Scan:
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

    # -- locations ---------------------------------------------------------------------
    def root_prefixes(self, exe_info: Mapping[str, Any] | None) -> list[tuple[str, str]]:
        env = self.environ
        candidates: list[tuple[str | None, str]] = [
            (self.cfg.root_prefix, "config conda.root_prefix"),
            (_root_from_exe(env["CONDA_EXE"]) if env.get("CONDA_EXE") else None, "CONDA_EXE"),
            (
                _root_from_exe(env["CONDA_PYTHON_EXE"]) if env.get("CONDA_PYTHON_EXE") else None,
                "CONDA_PYTHON_EXE",
            ),
            (env.get("MAMBA_ROOT_PREFIX"), "MAMBA_ROOT_PREFIX"),
            ((exe_info or {}).get("root_prefix"), "conda info"),
        ]
        roots: list[tuple[str, str]] = []
        seen: set[str] = set()
        for path, source in candidates:
            if not path:
                continue
            path = os.path.abspath(os.path.expanduser(path))
            if _norm(path) in seen:
                continue
            seen.add(_norm(path))
            if not self.watch.exists(path):
                self.warn(f"conda root prefix {path} (from {source}) does not exist; skipped")
                continue
            roots.append((path, source))
        return roots

    def read_condarc(self, path: str) -> dict[str, Any] | None:
        """Parse one .condarc (None: no such file); unreadable ones: a warning naming them."""
        try:
            data = self.watch.read(path)
            if data is None:
                return None
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            self.warn(f"cannot read conda config {path}: not UTF-8 ({e.reason}); skipped")
            return {}
        except OSError as e:
            self.warn(f"cannot read conda config {path}: {e.strerror or e}; skipped")
            return {}
        return _condarc.parse_condarc(text)

    def condarc_envs_dirs(self, roots: list[tuple[str, str]]) -> list[str]:
        """``envs_dirs`` from every .condarc conda would read, highest priority first."""
        primary_root = roots[0][0] if roots else None
        per_file: list[list[str]] = []
        for location in _condarc.condarc_search_path(primary_root, self.environ):
            if location.endswith(SEP):
                entries = self.watch.listdir(location)
                if entries is None:
                    if self.watch.sigs.get(location) is not None:  # there, but unreadable
                        self.warn(f"cannot read conda config folder {location}; skipped")
                    continue
                files = [location + e for e in entries if e.endswith((".yml", ".yaml"))]
            else:
                files = [location]  # read directly: a missing file is one failed open
            for path in files:
                data = self.read_condarc(path)
                if not data:
                    continue
                value = data.get("envs_dirs", data.get("envs_path"))
                if value is None:
                    continue
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list):
                    self.warn(f"conda config {path}: envs_dirs is not a list; ignored")
                    continue
                per_file.append([self.expand(v, path) for v in value])
        # conda merges sequence settings with later (higher-priority) files first.
        return [d for dirs in reversed(per_file) for d in dirs if d]

    def expand(self, value: str, origin: str) -> str:
        """Expand ``~`` and ``$VARS`` as conda does; relative paths are skipped with a warning."""
        expanded = os.path.expandvars(os.path.expanduser(value))
        if not os.path.isabs(expanded):
            self.warn(f"{origin}: envs dir {value!r} is not an absolute path; skipped")
            return ""
        return os.path.normpath(expanded)

    def envs_dirs(
        self, roots: list[tuple[str, str]], exe_info: Mapping[str, Any] | None
    ) -> list[str]:
        dirs: list[str] = []
        for var in ("CONDA_ENVS_PATH", "CONDA_ENVS_DIRS"):
            for part in (self.environ.get(var) or "").split(os.pathsep):
                if part:
                    dirs.append(self.expand(part, var))
        dirs += [self.expand(d, "config conda.envs_dirs") for d in self.cfg.envs_dirs]
        dirs += self.condarc_envs_dirs(roots)
        dirs += (exe_info or {}).get("envs_dirs", [])
        dirs += [os.path.join(root, "envs") for root, _ in roots]
        dirs.append(os.path.join(self.home, ".conda", "envs"))
        unique: list[str] = []
        seen: set[str] = set()
        for d in dirs:
            if d and _norm(d) not in seen:
                seen.add(_norm(d))
                unique.append(d)
        return unique

    def environments_txt(self) -> list[tuple[str, str]]:
        """Prefixes listed in ``~/.conda/environments.txt`` with ``(prefix, "file:line")``."""
        path = os.path.join(self.home, ".conda", "environments.txt")
        try:
            data = self.watch.read(path)
        except OSError as e:
            self.warn(f"cannot read {path}: {e.strerror or e}; skipped")
            return []
        if not data:
            return []
        lines: list[str | None]
        try:  # the whole file at once; line by line only to name a line that is not UTF-8
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            lines = []
            for raw in data.splitlines():
                try:
                    lines.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    lines.append(None)
        else:
            # bytes.splitlines() splits on \n, \r\n and \r only (str.splitlines on more).
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            lines = text.split("\n")  # type: ignore[assignment]
            if lines[-1] == "":
                lines.pop()
        listed = []
        where = f"{path} line "
        isabs = os.path.isabs
        for lineno, line in enumerate(lines, 1):
            if line is None:
                self.warn(f"{path} line {lineno}: not UTF-8 text; skipped")
                continue
            line = line.strip()
            if not line or line[0] == "#":
                continue
            if not (line[0] == "/" if not WIN else isabs(line)) or "\0" in line:
                self.warn(f"{path} line {lineno}: {line!r} is not an absolute path; skipped")
                continue
            listed.append((_normpath(line), where + str(lineno)))
        return listed

    def identity(self, prefix: str) -> tuple[int, int] | None:
        """``(st_dev, st_ino)`` of ``<prefix>/conda-meta/history``: None when not an env.

        The same environment reached through a symlink or another spelling has the same
        identity, without the cost of ``realpath``.
        """
        idents = self.idents
        if prefix in idents:
            return idents[prefix]
        # self.watch.stat_result(), inlined: one call per environment.
        path = prefix + _HISTORY
        watch = self.watch
        try:
            st = _stat(path)
        except (OSError, ValueError):
            watch.sigs[path] = idents[prefix] = None
            return None
        mtime = st.st_mtime_ns
        if mtime > watch.newest:
            watch.newest = mtime
        watch.sigs[path] = [mtime, st.st_size]
        ident = idents[prefix] = (st.st_dev, st.st_ino)
        return ident

    def environments(self, exe_info: Mapping[str, Any] | None) -> list[CondaEnv]:
        """Every environment, deduplicated (by identity), in order of precedence."""
        roots = self.root_prefixes(exe_info)
        envs_dirs = self.envs_dirs(roots, exe_info)
        root_ids: dict[tuple[int, int], str] = {}
        for root, _ in roots:
            ident = self.identity(root)
            if ident is not None:
                root_ids.setdefault(ident, root)
        dir_set = {_norm(d) for d in envs_dirs}
        found: list[CondaEnv] = []
        seen: set[tuple[int, int]] = set()
        identity = self.identity

        def root_of(folder: str) -> str | None:
            return root_ids.get(identity(folder))  # type: ignore[arg-type]

        def add(
            prefix: str, source: str, in_dir: bool | None, root: str | None, strict: bool
        ) -> None:
            ident = identity(prefix)
            if ident is None:
                if strict:
                    why = "has no conda-meta/history" if os.path.isdir(prefix) else "does not exist"
                    self.warn(f"conda environment {prefix} (listed in {source}) {why}; skipped")
                return
            if ident in seen:
                return
            seen.add(ident)
            is_base = ident in root_ids
            if in_dir is None:  # listed by path: is it in one of the envs dirs?
                parent = os.path.dirname(prefix)
                in_dir = _norm(parent) in dir_set
                if in_dir:
                    root = root_of(os.path.dirname(parent))
            name = "base" if is_base else os.path.basename(prefix.rstrip("/\\")) or prefix
            found.append(CondaEnv(prefix, name, is_base or in_dir, is_base, root, source, ident))

        for root, source in roots:
            add(root, source, False, root, strict=False)
        for d in envs_dirs:
            entries = self.watch.listdir(d)
            if not entries:
                continue
            root = root_of(os.path.dirname(d))
            source = f"envs dir {d}"
            base = d + SEP
            for entry in entries:
                prefix = base + entry
                # Inlined fast path of add(): every entry of an envs dir is looked at.
                ident = identity(prefix)
                if ident is None or ident in seen:
                    continue
                seen.add(ident)
                is_base = ident in root_ids
                if is_base:
                    name = "base"
                elif entry[-1] in "/\\":  # as add(): basename of the prefix, separators stripped
                    name = os.path.basename(prefix.rstrip("/\\")) or prefix
                else:
                    name = entry
                found.append(CondaEnv(prefix, name, True, is_base, root, source, ident))
        idents = self.idents
        for prefix, source in self.environments_txt():
            # Usually an environment already found in an envs dir: skip it cheaply.
            ident = idents.get(prefix)
            if ident is not None and ident in seen:
                continue
            add(prefix, source, None, None, strict=True)
        for prefix in (exe_info or {}).get("envs", []):
            add(os.path.normpath(prefix), "conda info", None, None, strict=True)
        return found

    # -- kernels -----------------------------------------------------------------------
    def has_ipykernel(self, prefix: str) -> bool:
        """ipykernel installed: a conda package record, or the package in site-packages."""
        watch = self.watch
        meta = watch.listdir(prefix + SEP + "conda-meta") or []
        python_version = None
        for entry in meta:
            if not entry.endswith(".json"):
                continue
            parts = entry[:-5].rsplit("-", 2)  # <name>-<version>-<build>.json
            if len(parts) != 3:
                continue
            if parts[0] == "ipykernel":
                return True
            if parts[0] == "python":
                python_version = ".".join(parts[1].split(".")[:2])
        if WIN:
            sites = [os.path.join(prefix, "Lib", "site-packages")]
        elif python_version:
            sites = [f"{prefix}/lib/python{python_version}/site-packages"]
        else:
            lib = prefix + "/lib"
            sites = [
                f"{lib}/{d}/site-packages"
                for d in watch.listdir(lib) or []
                if d.startswith("python3")
            ]
        for site in sites:
            # pip installing ipykernel changes this folder; while it is missing, its
            # creation is what would change the answer (no need to look inside).
            if watch.stat(site) is not None and watch.exists(
                os.path.join(site, "ipykernel", "__init__.py")
            ):
                return True
        return False

    def env_kernels(self, env: CondaEnv) -> list[tuple[str, dict[str, Any]]]:
        """``(kernel key, attributes)`` for each kernel type in ``env``.

        The kernelspec rules are the spec provider's (``kernel_mgmt.kernelspec``):
        lower-cased folder names ``[a-z0-9._-]``, the first folder of a name (sorted)
        wins even when its kernel.json is broken, folders without a kernel.json ignored.
        """
        watch = self.watch
        prefix = env.prefix
        kernels: list[tuple[str, dict[str, Any]]] = []
        kernels_dir = prefix + _KERNELS
        has_python = False
        seen: set[str] = set()
        # Its mtime (recorded by listdir): kernelspecs added or removed.
        entries = watch.listdir(kernels_dir)
        if entries:
            ks = self.kernelspec
            name_ok = self.name_ok
            parse = self.parse
            base = kernels_dir + SEP
            env_python = None
            for entry in entries:
                key = entry.lower()
                if key in seen:
                    continue
                resource_dir = base + entry
                path = resource_dir + _KERNEL_JSON
                try:
                    # Not a folder or no kernel.json: None (recorded as missing, so adding
                    # a kernel.json there is seen).
                    data: bytes | OSError | None = watch.read(path)
                except OSError as e:
                    data = e
                if data is None:
                    continue
                if not name_ok(key):
                    self.warn(
                        f"conda env {prefix}: skipping kernelspec {resource_dir}: "
                        f"invalid kernelspec folder name: {ks.NAME_RULE}"
                    )
                    continue
                seen.add(key)
                if isinstance(data, OSError):
                    self.warn(
                        f"conda env {prefix}: skipping invalid kernelspec "
                        f"{path}: cannot read: {data.strerror}"
                    )
                    continue
                try:
                    spec = parse(data, path)
                except ks.InvalidKernelSpec as e:
                    self.warn(f"conda env {prefix}: skipping invalid kernelspec {e}")
                    continue
                # kernel_mgmt.kernelspec.kernel_attributes(spec, resource_dir), done in place:
                # the spec was parsed for us alone (and is not kept), so no copy is needed
                # (the keys come out in the same order as from the copy).
                attrs = spec
                attrs["resource_dir"] = resource_dir
                if "display_name" not in attrs:
                    attrs["display_name"] = entry  # basename(resource_dir)
                language = attrs.setdefault("language", "")
                argv = attrs.setdefault("argv", [])
                attrs.setdefault("interrupt_mode", "signal")
                attrs.setdefault("env", {})
                attrs.setdefault("metadata", {})
                if "language_info" not in attrs:
                    attrs["language_info"] = {"name": language}
                # The argv list was parsed for us alone too: edit it in place.
                arg0 = argv[0]
                if arg0 in _BARE_PYTHON_COMMON or (
                    arg0[:6] == "python" and _BARE_PYTHON.fullmatch(arg0)
                ):
                    # "python" in an env means the env's python.
                    argv[0] = env_python or (env_python := python_path(prefix))
                if "{prefix}" in "\0".join(argv):
                    argv[:] = [a.replace("{prefix}", prefix) for a in argv]
                if not has_python:
                    has_python = str(language).lower() == _PYTHON_LANG
                kernels.append((key, attrs))
        if not has_python and self.has_ipykernel(prefix):
            key = "python3" if "python3" not in seen else "ipykernel"
            kernels.append(
                (
                    key,
                    {
                        "argv": [
                            python_path(prefix),
                            "-m",
                            "ipykernel_launcher",
                            "-f",
                            "{connection_file}",
                        ],
                        "display_name": "Python 3",
                        "language": _PYTHON_LANG,
                        "language_info": {"name": _PYTHON_LANG},
                        "interrupt_mode": "signal",
                        "env": {},
                        "metadata": {"debugger": True},
                    },
                )
            )
        return kernels

    def path_label(self, prefix: str) -> str:
        """``prefix`` for a display name, ``~`` for the home folder."""
        home = self.home.rstrip("/\\")
        if prefix.startswith(home + SEP):
            return "~" + prefix[len(home) :]
        return prefix

    def env_label(self, env: CondaEnv) -> str:
        """How display names say the environment: its conda name, else its path."""
        return env.name if env.named else self.path_label(env.prefix)

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
                    base = f"{name}-{hashlib.sha1(prefix.encode()).hexdigest()[:6]}"
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
    import platformdirs  # deferred: only needed on a cache miss

    return os.path.join(platformdirs.user_cache_dir("kernel_mgmt", appauthor=False), "conda")


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
    from . import __version__

    parts = [
        CACHE_FORMAT,
        __version__,
        cfg.fingerprint(),
        values,
        path,
        sys.prefix,
        list(_condarc.SYSTEM_DIRS),
    ]
    key = hashlib.sha1(json.dumps(parts).encode()).hexdigest()
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
