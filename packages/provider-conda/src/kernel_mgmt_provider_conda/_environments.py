"""Where conda environments are: roots, envs dirs, ``.condarc``, ``environments.txt``.

:class:`EnvironmentListing` (a base of the scan in :mod:`._discover`) lists the environments a
conda installation knows, without running conda, in conda's order of precedence (see
:mod:`._discover`); what lies inside each environment is :mod:`._env_kernels`'.
A folder is an environment when ``conda-meta/history`` exists.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import _condarc

if TYPE_CHECKING:  # pragma: no cover
    from ._cache import Watch
    from ._config import CondaConfig

__all__ = ["CondaEnv", "EnvironmentListing"]

WIN = sys.platform == "win32"
SEP = os.sep
_HISTORY = SEP + os.path.join("conda-meta", "history")
_stat = os.stat


class CondaEnv:
    """One environment found on disk."""

    __slots__ = ("ident", "is_base", "name", "named", "prefix", "root_prefix", "source")

    def __init__(
        self,
        prefix: str,
        name: str,  # conda's name: "base", the folder name, or (path-only envs) the folder name
        named: bool,  # in an envs dir or a root: ``conda activate <name>`` works
        is_base: bool,
        root_prefix: str | None,
        source: str,  # where it was found, for messages
        ident: tuple[int, int],  # (st_dev, st_ino) of conda-meta/history
    ) -> None:
        self.prefix = prefix
        self.name = name
        self.named = named
        self.is_base = is_base
        self.root_prefix = root_prefix
        self.source = source
        self.ident = ident

    def _values(self) -> tuple[Any, ...]:
        return (
            self.prefix,
            self.name,
            self.named,
            self.is_base,
            self.root_prefix,
            self.source,
            self.ident,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value (as a dataclass)

    def __repr__(self) -> str:
        names = ("prefix", "name", "named", "is_base", "root_prefix", "source", "ident")
        return "CondaEnv(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in names) + ")"


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


class EnvironmentListing:
    """The environment-listing half of a discovery pass (it records what it reads)."""

    cfg: CondaConfig
    environ: Mapping[str, str]
    watch: Watch
    home: str
    idents: dict[str, tuple[int, int] | None]

    def warn(self, message: str) -> None:  # pragma: no cover - the scan's
        raise NotImplementedError

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
