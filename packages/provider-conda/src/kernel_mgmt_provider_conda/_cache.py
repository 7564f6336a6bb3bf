"""Stat-signature bookkeeping and the on-disk cache of discovery results.

A scan records the signature (mtime in ns, size) of every file and folder it read, and
of every location it looked at and found missing. A cached result stays valid while every
signature is unchanged and it is younger than ``cache_ttl``; checking that is one
``os.stat`` per path, far cheaper than reading kernel.json files again.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from typing import Any

__all__ = ["RACY_WINDOW_NS", "Watch", "load_json", "save_json", "signature", "unchanged"]

#: Files changed this close to the scan may change again within one filesystem timestamp
#: tick without their mtime moving (git's "racily clean" problem); such results are only
#: trusted for a second.
RACY_WINDOW_NS = 50_000_000

Sig = list[int] | None
_UNSEEN: Any = object()


def signature(path: str) -> Sig:
    """``[mtime_ns, size]`` of ``path`` (following symlinks), or None when it is missing."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_mtime_ns, st.st_size]


def unchanged(watch: dict[str, Sig]) -> bool:
    """Whether every watched path still has the signature recorded during the scan."""
    return all(signature(path) == sig for path, sig in watch.items())


class Watch:
    """Records the signature of every path a scan looks at (before reading it)."""

    def __init__(self) -> None:
        self.sigs: dict[str, Sig] = {}
        self.results: dict[str, os.stat_result | None] = {}
        self.started_ns = time.time_ns()

    def stat_result(self, path: str) -> os.stat_result | None:
        """``os.stat(path)`` (None when missing), recorded; each path is stat-ed once."""
        st: os.stat_result | None = self.results.get(path, _UNSEEN)  # type: ignore[assignment]
        if st is not _UNSEEN:
            return st
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            st = None
        self.results[path] = st
        self.sigs[path] = None if st is None else [st.st_mtime_ns, st.st_size]
        return st

    def stat(self, path: str) -> Sig:
        """Signature of ``path``, recorded."""
        self.stat_result(path)
        return self.sigs[path]

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists (recorded, so its creation or removal invalidates)."""
        return self.stat(path) is not None

    def listdir(self, path: str) -> list[str] | None:
        """Sorted entries of folder ``path``, or None when it is missing or unreadable."""
        if self.stat(path) is None:
            return None
        try:
            return sorted(os.listdir(path))
        except OSError:
            return None

    def read_bytes(self, path: str) -> bytes:
        """Content of file ``path``; its signature is recorded first, so a later change shows.

        :raises OSError: when it cannot be read.
        """
        self.stat(path)
        with open(path, "rb") as f:
            return f.read()

    def racy(self) -> bool:
        """Whether a watched path changed so shortly before the scan that it may hide a change."""
        limit = self.started_ns - RACY_WINDOW_NS
        return any(sig is not None and sig[0] > limit for sig in self.sigs.values())


def load_json(path: str) -> Any:
    """Parsed JSON content of ``path``, or None when missing or unreadable (a cache miss)."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def save_json(path: str, data: Any) -> None:
    """Write ``data`` atomically (temp file + rename); failures are ignored (cache only)."""
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
