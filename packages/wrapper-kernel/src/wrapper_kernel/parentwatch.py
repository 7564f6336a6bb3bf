"""Noticing that the process which launched the kernel has died, so the kernel exits too.

The control thread of :class:`~wrapper_kernel.server.KernelServer` polls a
``_ParentWatch``'s pidfds (or polls the pids where Linux pidfds are missing).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from kernel_mgmt.connection import pid_alive

__all__: list[str] = []  # private to the server


#: How many generations :func:`_ancestors` walks up before giving up (a loop guard).
_MAX_ANCESTRY = 64


def _ancestors(ppid: int) -> list[int] | None:
    """Our parent *ppid* and its ancestors up to init, from ``/proc/<pid>/stat``; None where
    there is no ``/proc`` (macOS, Windows), so ancestry cannot be told."""
    if not os.path.isdir("/proc/self"):
        return None
    chain: list[int] = []
    pid = ppid
    while pid > 0 and pid not in chain and len(chain) < _MAX_ANCESTRY:
        chain.append(pid)
        if pid == 1:
            break
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            # "pid (comm) state ppid ...": comm may hold spaces and ")", so split after the
            # last ")".
            pid = int(stat[stat.rindex(b")") + 1 :].split()[1])
        except (OSError, ValueError, IndexError):  # exited while we walked, or unreadable
            break
    return chain


class _ParentWatch:
    """Notices when the process that launched the kernel dies, so the kernel exits too.

    Two candidates: our parent process (noted at start-up: once it dies we are reparented and
    ``getppid()`` no longer names it), and ``JPY_PARENT_PID``, the pid jupyter_client and
    kernel_mgmt's launchers put in the kernel's environment. The latter covers a launcher that
    started us through a wrapper (a shell, an environment activator) that outlives it, and one
    that died before we started. Linux gives a pidfd that becomes readable at exit; elsewhere
    the pids are polled.

    ``JPY_PARENT_PID`` is inherited by every process below the launcher, so a kernel may see a
    stale value from an unrelated session (``launch_kernel(independent=True)`` keeps it): a
    dead pid, or one reused by another process. It is trusted only when it names an ancestor
    (on Linux, the ``/proc`` ppid chain; elsewhere only our parent itself), or when we were
    orphaned before we ran (our parent is init): then a dead one is the launcher that died
    while we started. Otherwise it is ignored with one line on stderr. (ipykernel goes
    further and ignores any value but the original parent's pid.) Not covered: a launcher
    that died before we ran while a child subreaper (``systemd --user``) adopted us, which
    looks like a stale value.
    """

    def __init__(self, ppid: int, jpy_parent: str | None) -> None:
        pids = [ppid] if ppid > 1 else []
        self.ppid = ppid
        self.ignored: str | None = None  # why JPY_PARENT_PID is not watched
        self._dead: int | None = None
        jpy = self._launcher(ppid, jpy_parent)
        if jpy is not None:
            pids.append(jpy)
        self.pids: dict[int, int | None] = {}  # pid -> pidfd (None: poll)
        for pid in pids:
            try:
                self.pids[pid] = os.pidfd_open(pid)
            except ProcessLookupError:
                self._dead = pid  # already gone
            except (AttributeError, OSError):  # no pidfd here (macOS, old Linux): poll
                self.pids[pid] = None
        self.fds = {fd: pid for pid, fd in self.pids.items() if fd is not None}
        self.needs_polling = any(fd is None for fd in self.pids.values())

    def _launcher(self, ppid: int, jpy_parent: str | None) -> int | None:
        """The ``JPY_PARENT_PID`` to watch besides our parent, or None (see the class doc)."""
        try:
            jpy = int(jpy_parent or 0)
        except ValueError:
            return None
        if jpy <= 1 or jpy == ppid or jpy == os.getpid():
            return None
        if ppid == 1:
            # Orphaned before we ran: our ancestry is lost, the launcher's word is all there
            # is. Dead, it died while we started (the watch reports it at once).
            return jpy
        if not pid_alive(jpy):
            self.ignored = (
                f"JPY_PARENT_PID={jpy} names no running process while our parent {ppid} is "
                "alive (a value inherited from another session?); ignoring it"
            )
            return None
        chain = _ancestors(ppid)
        if chain is not None and jpy in chain:
            return jpy
        self.ignored = (
            f"JPY_PARENT_PID={jpy} is not "
            + ("an ancestor of this kernel" if chain is not None else f"our parent ({ppid})")
            + " (a value inherited from another session?); ignoring it"
        )
        return None

    def gone(self, events: Any) -> str | None:
        """A description of the launcher that died, if one did (``events``: ready fds)."""
        dead = self._dead
        for pid, fd in self.pids.items():
            if dead is not None:
                break
            if fd is not None:
                if fd in events:
                    dead = pid
            elif pid != self.ppid and not pid_alive(pid):
                dead = pid
        # Our parent: reparenting is the sure sign (also when its pid was reused).
        if dead is None and self.ppid in self.pids and os.getppid() != self.ppid:
            dead = self.ppid
        if dead is None:
            return None
        what = "parent process" if dead == self.ppid else "launching process (JPY_PARENT_PID)"
        return f"{what} {dead}"

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
