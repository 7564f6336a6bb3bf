"""Is a program in a pseudo-terminal waiting for the user to type a line?

A REPL kernel must tell "the command is still working" (keep streaming its output) from "the
command asked a question and waits for an answer" (send ``input_request`` to the frontend,
messaging spec "Messages on the stdin ROUTER/DEALER channel"). Output alone cannot tell:
``read x`` prints nothing, and ``sleep 5`` prints nothing either.

So we ask the operating system. On Linux, ``/proc/<pid>/syscall`` names the system call a
sleeping process is blocked in and its arguments. The terminal's foreground process group
(``tcgetpgrp`` on the pty master) holds the command that owns the terminal; a member of it
that is blocked

* in ``read``/``readv`` on a file descriptor that is our terminal (``cat``, ``read x``,
  Python's ``input()`` without readline, ``getpass`` on ``/dev/tty``), or
* in ``select``/``pselect6`` on descriptor 0 alone, or ``poll``/``ppoll`` on descriptors
  that are all our terminal (GNU readline waiting for a key: ``python3 -i``, ``read -e``),

is waiting for input. ``sleep`` (``clock_nanosleep``), a download (``poll`` on a socket) or a
child being waited for (``wait4``) are not. Where ``/proc`` cannot be read (not Linux, or not
allowed), :func:`waiting_for_input` returns ``None`` and the caller falls back on a heuristic.
"""

from __future__ import annotations

import os
import struct

__all__ = ["session_members", "waiting_for_input"]

# System call numbers by machine (asm/unistd.h): read, readv, and the waits readline uses.
_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {"read": 0, "readv": 19, "poll": 7, "select": 23, "pselect6": 270, "ppoll": 271},
    "aarch64": {"read": 63, "readv": 65, "pselect6": 72, "ppoll": 73},
}
_NUMBERS = _SYSCALLS.get(os.uname().machine if hasattr(os, "uname") else "", {})
_BY_NUMBER = {number: name for name, number in _NUMBERS.items()}


def _fd_is(pid: int, fd: int, tty: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}") == tty
    except OSError:
        return False


def _blocked_on_tty(pid: int, tty: str) -> bool | None:
    """True if ``pid`` is blocked reading ``tty``; None if its state cannot be read."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return None
    if not fields or not fields[0].isdigit():
        return False  # "running" or "-1 ...": not in a system call
    name = _BY_NUMBER.get(int(fields[0]))
    if name is None or len(fields) < 3:
        return False
    args = [int(a, 16) for a in fields[1:7]]
    if name in ("read", "readv"):
        return _fd_is(pid, args[0], tty)
    if name in ("select", "pselect6"):
        # nfds == 1: only descriptor 0 is watched.
        return args[0] == 1 and _fd_is(pid, 0, tty)
    # poll/ppoll(struct pollfd *fds, nfds_t nfds, ...): read the array from the process.
    nfds = args[1]
    if not 0 < nfds <= 16:
        return False
    try:
        with open(f"/proc/{pid}/mem", "rb") as mem:
            mem.seek(args[0])
            raw = mem.read(8 * nfds)
    except (OSError, ValueError, OverflowError):
        return None
    if len(raw) != 8 * nfds:
        return None
    fds = [struct.unpack_from("i", raw, 8 * i)[0] for i in range(nfds)]
    return all(fd < 0 or _fd_is(pid, fd, tty) for fd in fds)


def _group_members(pgid: int, field: int = 2) -> list[int]:
    """The processes of process group ``pgid`` (its leader first, when alive); with
    ``field=3``, of session ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ")".
            if int(stat[stat.rindex(b")") + 1 :].split()[field]) == pgid:
                members.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    members.sort(key=lambda pid: pid != pgid)
    return members


def session_members(sid: int) -> list[int]:
    """The processes of session ``sid`` (Linux; empty elsewhere): what a dead REPL left
    holding its terminal."""
    if not os.path.isdir("/proc/self"):
        return []
    return _group_members(sid, field=3)


def _typed_ahead(tty: str) -> bool:
    """Whether input we typed still waits in the terminal, unread (then nobody waits)."""
    try:
        import fcntl
        import termios

        fd = os.open(tty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except (ImportError, OSError):
        return False
    try:
        count = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
        return struct.unpack("i", count)[0] > 0
    except OSError:
        return False
    finally:
        os.close(fd)


def waiting_for_input(master_fd: int, tty: str, shell_pid: int, scan: bool = True) -> bool | None:
    """Whether the terminal's foreground command is blocked reading it.

    ``master_fd`` is the pty's master side, ``tty`` the slave's path (``/dev/pts/N``),
    ``shell_pid`` the program we started (checked too: ``python3 -i`` runs ``input()`` in
    itself). ``scan=False`` checks only the group leader and ``shell_pid`` (cheap); ``True``
    also scans ``/proc`` for the group's other members (a pipeline's later commands).
    Returns None when this system does not let us know.
    """
    if not _NUMBERS or not os.path.isdir("/proc/self"):
        return None
    try:
        pgid = os.tcgetpgrp(master_fd)
    except OSError:
        return None
    if _typed_ahead(tty):
        return False
    candidates = [pgid, shell_pid] if pgid != shell_pid else [pgid]
    unknown = False
    for pid in candidates:
        state = _blocked_on_tty(pid, tty)
        if state:
            return True
        unknown |= state is None and os.path.exists(f"/proc/{pid}")
    if scan:
        for pid in _group_members(pgid):
            if pid in candidates:
                continue
            if _blocked_on_tty(pid, tty):
                return True
    return None if unknown else False
