"""Stat-signature bookkeeping and the on-disk cache of discovery results.

A scan records the signature (mtime in ns, size) of every file and folder it read, and
of every location it looked at and found missing. A cached result stays valid while every
signature is unchanged and it is younger than ``cache_ttl``; checking that is one
``os.stat`` per path, far cheaper than reading kernel.json files again.

A cold scan of 50 environments is a few hundred system calls: this module keeps the Python
work per call small (plain ``os`` functions on ``str`` paths, one dict entry per path, the
signature of a file taken with ``fstat`` on the descriptor it is read through).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any

__all__ = ["RACY_WINDOW_NS", "Watch", "load_json", "save_json", "signature", "unchanged"]

#: Files changed this close to the scan may change again within one filesystem timestamp
#: tick without their mtime moving (git's "racily clean" problem); such results are only
#: trusted for a second.
RACY_WINDOW_NS = 50_000_000

Sig = list[int] | None
_CHUNK = 65536
_MISSING = (FileNotFoundError, NotADirectoryError)
_stat = os.stat
_fstat = os.fstat
_open = os.open
_read = os.read
_close = os.close
_listdir = os.listdir
_O_RDONLY = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # os.open: close-on-exec already


def signature(path: str) -> Sig:
    """``[mtime_ns, size]`` of ``path`` (following symlinks), or None when it is missing."""
    try:
        st = _stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_mtime_ns, st.st_size]


def unchanged(watch: dict[str, Sig]) -> bool:
    """Whether every watched path still has the signature recorded during the scan.

    (``signature(path) != sig`` for each path, inlined: a warm listing is this loop.)
    """
    for path, sig in watch.items():
        try:
            st = _stat(path)
        except (OSError, ValueError):
            if sig is not None:
                return False
            continue
        if [st.st_mtime_ns, st.st_size] != sig:
            return False
    return True


def _read_fd(fd: int) -> bytes:
    data = _read(fd, _CHUNK)
    if len(data) < _CHUNK:
        return data  # the usual small file: one read
    chunks = [data]
    while chunk := _read(fd, _CHUNK):
        chunks.append(chunk)
    return b"".join(chunks)


class Watch:
    """Records the signature of every path a scan looks at (before reading it).

    ``newest`` is the latest mtime recorded, so :meth:`racy` needs no second pass.
    """

    __slots__ = ("newest", "sigs", "started_ns")

    def __init__(self) -> None:
        self.sigs: dict[str, Sig] = {}
        self.started_ns = time.time_ns()
        self.newest = 0

    def _record(self, path: str, st: os.stat_result) -> list[int]:
        mtime = st.st_mtime_ns
        if mtime > self.newest:
            self.newest = mtime
        sig = self.sigs[path] = [mtime, st.st_size]
        return sig

    def stat_result(self, path: str) -> os.stat_result | None:
        """``os.stat(path)`` (None when missing or unusable), recorded."""
        try:
            st = _stat(path)
        except (OSError, ValueError):
            self.sigs[path] = None
            return None
        self._record(path, st)
        return st

    def stat(self, path: str) -> Sig:
        """Signature of ``path``, recorded (a path already recorded is not stat-ed again)."""
        sigs = self.sigs
        if path in sigs:
            return sigs[path]
        try:
            st = _stat(path)
        except (OSError, ValueError):
            sigs[path] = None
            return None
        return self._record(path, st)

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists (recorded, so its creation or removal invalidates)."""
        return self.stat(path) is not None

    def listdir(self, path: str) -> list[str] | None:
        """Sorted entries of folder ``path``, or None when it is missing or unreadable.

        The folder's signature is recorded first (its mtime moves when an entry is added,
        removed or renamed).
        """
        sigs = self.sigs
        if path in sigs:
            if sigs[path] is None:
                return None
        else:  # self.stat(path), inlined: one call per environment
            try:
                st = _stat(path)
            except (OSError, ValueError):
                sigs[path] = None
                return None
            mtime = st.st_mtime_ns
            if mtime > self.newest:
                self.newest = mtime
            sigs[path] = [mtime, st.st_size]
        try:
            names = _listdir(path)
        except (OSError, ValueError):
            return None
        names.sort()
        return names

    def read(self, path: str) -> bytes | None:
        """Content of file ``path``, or None when it does not exist (recorded as missing).

        The signature comes from ``fstat`` on the open file, before reading: a change
        after it shows as a changed signature.

        :raises OSError: when it exists but cannot be read (its signature is recorded).
        """
        try:
            fd = _open(path, _O_RDONLY)
        except _MISSING:
            self.sigs[path] = None
            return None
        except OSError:
            self.stat(path)  # unreadable: fixing its mode must invalidate
            raise
        except ValueError:  # a NUL in the path: cannot exist
            self.sigs[path] = None
            return None
        try:
            st = _fstat(fd)
            mtime = st.st_mtime_ns
            if mtime > self.newest:
                self.newest = mtime
            self.sigs[path] = [mtime, st.st_size]
            data = _read(fd, _CHUNK)
            if len(data) < _CHUNK:
                return data  # the usual small file: one read
            chunks = [data]
            while chunk := _read(fd, _CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            _close(fd)

    def racy(self) -> bool:
        """Whether a watched path changed so shortly before the scan that it may hide a change."""
        return self.newest > self.started_ns - RACY_WINDOW_NS


def load_json(path: str) -> Any:
    """Parsed JSON content of ``path``, or None when missing or unreadable (a cache miss)."""
    try:
        fd = _open(path, _O_RDONLY)
    except (OSError, ValueError):
        return None
    try:
        return json.loads(_read_fd(fd))
    except (OSError, ValueError):
        return None
    finally:
        _close(fd)


def save_json(path: str, data: Any) -> None:
    """Write ``data`` atomically (temp file + rename); failures are ignored (cache only)."""
    import tempfile  # deferred: only a cache write needs it (tempfile imports shutil, random)

    folder = os.path.dirname(path)
    try:
        text = json.dumps(data, separators=(",", ":")).encode()
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    except (OSError, TypeError, ValueError):
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def user_cache_dir() -> str:
    """platformdirs' user cache dir for "kernel_mgmt" (e.g. ``~/.cache/kernel_mgmt``).

    On Linux the common cases (an absolute ``$XDG_CACHE_HOME``, or ``~/.cache`` under an
    absolute home) are computed here with platformdirs' rules, as ``kernel_mgmt.config`` does
    for the config dir: importing platformdirs (pathlib, tempfile, ...) would cost every
    ``kernel-mgmt list`` several ms. A test checks both agree. Anything else asks platformdirs.
    """
    if sys.platform.startswith("linux"):
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        if os.path.isabs(xdg):
            return os.path.join(xdg, "kernel_mgmt")
        if not xdg.strip():
            base = os.path.expanduser("~/.cache")
            if os.path.isabs(base):
                return os.path.join(base, "kernel_mgmt")
    import platformdirs

    return platformdirs.user_cache_dir("kernel_mgmt", appauthor=False)
