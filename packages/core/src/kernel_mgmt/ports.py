"""Ports for local kernels: drawn so that concurrent launches never collide.

Port allocation: jupyter_client binds port 0, reads the number the OS picked and
closes the socket. Between that close and the kernel's own bind, anything else may
take the port, and under many concurrent starts something does ("Address already in
use", jupyter_client #487). Four measures make that race practically impossible:

1. Ports are drawn at random from *outside* the OS ephemeral range
   (``/proc/sys/net/ipv4/ip_local_port_range``), and from 10000 up (below that live
   well-known services such as 5432 or 8888). Nothing holds a port between our check
   and the kernel's bind, but the OS never gives a port from this pool to an outgoing
   connection or to anyone's ``bind(0)`` — which is where jupyter_client and most
   other programs get theirs — so those cannot take it from us.
2. An in-process registry remembers every port handed out in the last
   ``RESERVATION_SECONDS``; concurrent launches in this process never receive the
   same port, even before any kernel has bound it.
3. A cross-process registry does the same between processes of one user (parallel
   test workers each starting kernels, several servers): one file per port, created
   with ``O_EXCL`` in a private 0700 directory (``$KERNEL_MGMT_PORT_REGISTRY``,
   else ``kernel-mgmt-ports-<uid>`` in ``$XDG_RUNTIME_DIR``, ``/dev/shm`` or the temp
   dir), holding the owner's pid. Released when the manager cleans up; an entry whose
   process is gone or older than the TTL is taken over (under a lock on the directory,
   so that two processes never both take one over). Only allocation pays for it
   (~20 µs a port).
4. Each candidate passes a bind test (no ``SO_REUSEADDR``, so a port in use by any
   listener, or lingering in TIME_WAIT, is rejected) before it is handed out.

What remains is a program of another user, or one not using this registry, binding
the very same port out of ~27000 explicitly in the moment between our check and the
kernel's bind: rare enough not to warrant a launch retry, which would make every
launch wait for the kernel to bind. (Letting the kernel pick its ports and report
them back would need every kernel to support it.) If the non-ephemeral pool is too
small (an unusual sysctl), we fall back to OS-assigned ports, deduplicated in-process.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Iterator

__all__ = [
    "CHANNELS",
    "ENV_PORT_REGISTRY",
    "LOCALHOST",
    "MIN_POOL",
    "MIN_PORT",
    "PORT_NAMES",
    "RESERVATION_SECONDS",
    "allocate_ports",
    "ephemeral_port_range",
    "pid_alive",
    "reclaim_ports",
    "release_ports",
]

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
LOCALHOST = "127.0.0.1"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


#: How long a port handed out stays reserved (the kernel should have bound it long
#: before; afterwards the bind test sees it as taken anyway).
RESERVATION_SECONDS = 600.0


#: Lowest port we draw from: below this live well-known services (5432, 8080, 8888...).
MIN_PORT = 10000


#: Fewer candidate ports than this outside the ephemeral range → use OS-assigned ports.
MIN_POOL = 2000


#: Directory of the cross-process port registry (default: per user, see _registry_dir).
ENV_PORT_REGISTRY = "KERNEL_MGMT_PORT_REGISTRY"


_lock = threading.Lock()


# port -> expiry (time.monotonic). Keyed by port alone: a port bound on 0.0.0.0 and one
# on 127.0.0.1 collide too.
_reserved: dict[int, float] = {}


_registry_dirs: dict[str, str | None] = {}


def ephemeral_port_range() -> tuple[int, int]:
    """Return the OS range for automatically assigned ports (inclusive)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 49152, 65535  # IANA dynamic range: macOS, Windows and BSD defaults


def _port_pool() -> list[tuple[int, int]]:
    """Inclusive ranges of ports outside the ephemeral range, above MIN_PORT."""
    lo, hi = ephemeral_port_range()
    ranges = [(MIN_PORT, lo - 1), (hi + 1, 65535)]
    return [(a, b) for a, b in ranges if b >= a]


def _bind_test(ip: str, port: int, reuse_addr: bool = False) -> int | None:
    """Bind (ip, port) without SO_REUSEADDR and return the bound port, or None if taken.

    With *reuse_addr* the test sets SO_REUSEADDR, as ZeroMQ does on its listening sockets:
    a port a kernel just had is then free despite its connections lingering in TIME_WAIT,
    and still taken while anything listens on it.
    """
    import socket  # deferred: only allocation needs it, not a kernel reading its file

    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    host = "127.0.0.1" if ip == "localhost" else ip
    with socket.socket(family, socket.SOCK_STREAM) as s:
        if reuse_addr:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return None
        return s.getsockname()[1]


def _registry_dir() -> str | None:
    """The per-user directory where processes record the ports they hand out.

    ``$KERNEL_MGMT_PORT_REGISTRY``, else ``kernel-mgmt-ports-<uid>`` under
    ``$XDG_RUNTIME_DIR``, ``/dev/shm`` or the temp dir. It must be a real directory owned by us and
    closed to others (it sits in a shared place); otherwise, and on platforms without
    uids, reservations stay in-process only.
    """
    if not hasattr(os, "getuid"):
        return None
    path = os.environ.get(ENV_PORT_REGISTRY)
    if not path:
        import tempfile  # deferred: only launching needs it, not a kernel's start-up

        # Memory-backed places first: entries are created and removed on every launch.
        base = os.environ.get("XDG_RUNTIME_DIR") or (
            "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
        )
        path = os.path.join(base, f"kernel-mgmt-ports-{os.getuid()}")
    if path in _registry_dirs:
        return _registry_dirs[path]
    checked: str | None = None
    try:
        with contextlib.suppress(FileExistsError):
            os.makedirs(path, mode=0o700)
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
            checked = path
    except OSError:
        pass
    _registry_dirs[path] = checked
    return checked


def _randbelow(n: int) -> int:
    """A uniform-enough random int in [0, n) from the OS CSPRNG (n is at most 65536)."""
    return int.from_bytes(os.urandom(4), "big") % n


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (also one of another user's, which we may not
    signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, not ours to signal
    return True


def _stale(entry: str) -> bool:
    """Is this registry entry left over (its process gone, or older than the TTL)?"""
    try:
        if time.time() - os.stat(entry).st_mtime > RESERVATION_SECONDS:
            return True
        with open(entry) as f:
            text = f.read()
    except FileNotFoundError:
        return True  # released meanwhile: try again
    except OSError:
        return False
    if not text:
        return False  # being written right now by its owner
    try:
        return not pid_alive(int(text))
    except ValueError:
        return True


def _create_entry(entry: str) -> bool:
    """Create a registry entry holding our pid; False if it exists."""
    try:
        fd = os.open(entry, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    return True


@contextlib.contextmanager
def _registry_lock(registry: str) -> Iterator[None]:
    """Exclusive lock (flock on the directory itself), held while stale entries are replaced."""
    import fcntl  # deferred: only allocation needs it

    fd = os.open(registry, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _claim(registry: str | None, port: int) -> bool:
    """Record *port* as ours in the registry; False if another live process holds it."""
    if registry is None:
        return True
    entry = os.path.join(registry, str(port))
    try:
        if _create_entry(entry):
            return True
        if not _stale(entry):
            return False
        # Taking over a stale entry: two processes may both have judged it stale, and the
        # later one must not delete the entry the earlier one has just made. Under the lock
        # the entry is judged again before it is replaced.
        with _registry_lock(registry):
            if os.path.lexists(entry):
                if not _stale(entry):
                    return False
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry)
            return _create_entry(entry)
    except OSError:
        return True  # registry unusable (full disk...): in-process + bind test remain


def _unclaim(registry: str | None, port: int) -> None:
    if registry is None:
        return
    entry = os.path.join(registry, str(port))
    with contextlib.suppress(OSError, ValueError):
        with open(entry) as f:
            owner = int(f.read())
        if owner == os.getpid():
            os.unlink(entry)


def _sweep(registry: str) -> None:
    """Remove stale entries (processes that died without releasing their ports)."""
    with contextlib.suppress(OSError), _registry_lock(registry):  # see _claim
        for name in os.listdir(registry):
            entry = os.path.join(registry, name)
            if _stale(entry):
                with contextlib.suppress(OSError):
                    os.unlink(entry)


def allocate_ports(ip: str = LOCALHOST, n: int = 5) -> list[int]:
    """Return *n* distinct free TCP ports on *ip*, reserved against reuse by other launches.

    See the module docstring for why these do not collide under concurrent launches.
    """
    pool = _port_pool()
    size = sum(b - a + 1 for a, b in pool)
    registry = _registry_dir() if size >= MIN_POOL else None
    ports: list[int] = []
    with _lock:
        now = time.monotonic()
        for port in [p for p, expiry in _reserved.items() if expiry < now]:
            del _reserved[port]
            _unclaim(registry, port)
        if registry is not None and _randbelow(64) == 0:
            _sweep(registry)
        attempts = 0
        while len(ports) < n:
            attempts += 1
            if attempts > 1000 * n:
                for port in ports:
                    _unclaim(registry, port)
                raise OSError(f"could not find {n} free ports on {ip} after {attempts} tries")
            if size >= MIN_POOL:
                idx = _randbelow(size)
                for a, b in pool:
                    if idx <= b - a:
                        candidate = a + idx
                        break
                    idx -= b - a + 1
            else:
                candidate = 0  # let the OS pick; the in-process registry still deduplicates
            if candidate in _reserved or candidate in ports:
                continue
            port = _bind_test(ip, candidate)
            if port is None or port in _reserved or port in ports:
                continue
            if not _claim(registry, port):
                continue  # another process handed it out and its kernel has not bound yet
            ports.append(port)
        expiry = now + RESERVATION_SECONDS
        for port in ports:
            _reserved[port] = expiry
    return ports


def reclaim_ports(ports: list[int], ip: str = LOCALHOST) -> int | None:
    """Reserve *ports* again for a new kernel (a restart keeping its predecessor's ports).

    All or nothing: each port must be reserved by no one in this process (the previous
    kernel's manager has released it), claimable in the cross-process registry, and free to
    bind (tested with SO_REUSEADDR, see :func:`_bind_test`). Returns None when all of them
    are reserved now (as :func:`allocate_ports` reserves), else the first port that is not.
    """
    registry = _registry_dir()
    claimed: list[int] = []
    with _lock:
        for port in ports:
            ok = (
                isinstance(port, int)
                and 0 < port < 65536
                and port not in _reserved
                and port not in claimed
                and _bind_test(ip, port, reuse_addr=True) is not None
                and _claim(registry, port)
            )
            if not ok:
                for taken in claimed:
                    _unclaim(registry, taken)
                return port
            claimed.append(port)
        expiry = time.monotonic() + RESERVATION_SECONDS
        for port in claimed:
            _reserved[port] = expiry
    return None


def release_ports(ports: list[int], ip: str = LOCALHOST) -> None:
    """Forget reservations, e.g. after the kernel holding them has exited.

    Reservations are per port whatever the address; *ip* is accepted for symmetry.
    """
    registry = _registry_dir()
    with _lock:
        for port in ports:
            if _reserved.pop(port, None) is not None:
                _unclaim(registry, port)
