"""Connection files, HMAC keys and port allocation for local kernels.

A connection file is the JSON document a kernel reads at start-up to learn where to
listen and how to sign messages. We write the same keys as jupyter_client
(``transport, ip, shell_port, iopub_port, stdin_port, control_port, hb_port, key,
signature_scheme, kernel_name``) so any kernel and any client understand it.

Security: the file holds the HMAC key, so it is created with mode 0600 by ``os.open``
itself (never ``chmod`` after: that leaves a window where it is world-readable) in a
0700 runtime directory, written to a temporary name and renamed into place so that a
kernel never reads a half-written file. Keys are 256 random bits (``os.urandom``).

Port allocation (why ports never collide under many concurrent starts) is
:mod:`kernel_mgmt.ports`; its public names are importable from here too.

Only loopback addresses are used unless the caller explicitly opts in
(``allow_remote=True`` on the launcher): a kernel executes arbitrary code for anyone
who can reach its ports and knows the key.

Restarts: inside ``with reusing_connection(previous_info):`` a launch by the subprocess
launchers keeps the previous kernel's transport, ip, ports, key, signature scheme and Curve
key pair, so that clients connected to it (sockets, websockets through a server) go on
working with the new kernel, as jupyter_client's local provisioner keeps them. A port that is
no longer free means fresh ports (said in a debug log), never a failed launch.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from .ports import (
    _O_NOFOLLOW,
    CHANNELS,
    ENV_PORT_REGISTRY,
    LOCALHOST,
    MIN_POOL,
    MIN_PORT,
    PORT_NAMES,
    RESERVATION_SECONDS,
    allocate_ports,
    ephemeral_port_range,
    pid_alive,
    reclaim_ports,
    release_ports,
)

__all__ = [
    "CHANNELS",
    "ENV_PORT_REGISTRY",
    "LOCALHOST",
    "MIN_POOL",
    "MIN_PORT",
    "PORT_NAMES",
    "RESERVATION_SECONDS",
    "ConnectionFileError",
    "allocate_ports",
    "channel_url",
    "ephemeral_port_range",
    "is_loopback",
    "new_key",
    "new_uuid",
    "pid_alive",
    "read_connection_file",
    "reclaim_ports",
    "release_ports",
    "reused_connection",
    "reusing_connection",
    "write_connection_file",
]

# Re-exported for code and tests that read the port registry through this module.
from .ports import _registry_dir as _registry_dir
from .ports import _reserved as _reserved


class ConnectionFileError(ValueError):
    """A connection file is missing, unreadable or lacks required keys."""


def _debug(message: str, *args: Any) -> None:
    import logging  # deferred: kernels import this module at start-up and log nothing here

    logging.getLogger("kernel_mgmt.connection").debug(message, *args)


#: The connection a launch in this context should keep (see reusing_connection).
_reuse: ContextVar[dict[str, Any] | None] = ContextVar("kernel_mgmt_reuse", default=None)
#: What a reused connection keeps besides its ports (Curve keys only when the launch gives
#: the kernel keys at all: its kernelspec and policy decide that, as for any launch).
_KEPT = ("key", "signature_scheme")
_CURVE_KEYS = ("curve_publickey", "curve_secretkey")


@contextlib.contextmanager
def reusing_connection(info: Mapping[str, Any] | None) -> Iterator[None]:
    """Ask launches made inside this block (this task or thread only) to keep *info*.

    *info* is the previous kernel's connection info (``transport``, ``ip``, the five ports,
    ``key``, ``signature_scheme`` and, if it has them, ``curve_publickey``/``curve_secretkey``).
    :class:`~kernel_mgmt.subproc.launcher.SubprocessKernelLauncher` and
    :class:`~kernel_mgmt.subproc.launcher.SubprocessIPCKernelLauncher` honour it when they
    write the new connection file: same transport and ip, the same ports if every one of
    them is free again (re-reserved for the new kernel; otherwise fresh ports, said in a debug
    log), and the same key, signature scheme and Curve key pair. Launch the new kernel only
    after the old one's manager has exited and been cleaned up (a restart's order), so its
    ports are released before they are taken again. Other launchers ignore it. None: no
    reuse (the block changes nothing).
    """
    token = _reuse.set(dict(info) if info is not None else None)
    try:
        yield
    finally:
        _reuse.reset(token)


def reused_connection() -> dict[str, Any] | None:
    """The connection info :func:`reusing_connection` asks the current launch to keep."""
    return _reuse.get()


def reuse_tcp_ports(previous: Mapping[str, Any], ip: str) -> dict[str, int] | None:
    """The previous kernel's tcp ports, reserved again for the new one, or None.

    None (and a debug log saying why) when the transport or ip differ or a port is taken.
    """
    if previous.get("transport", "tcp") != "tcp" or previous.get("ip") != ip:
        _debug(
            "not reusing the previous kernel's ports: it listened on %s %s, this one on tcp %s",
            previous.get("transport", "tcp"),
            previous.get("ip"),
            ip,
        )
        return None
    wanted = [previous.get(name) for name in PORT_NAMES]
    taken = reclaim_ports(wanted, ip)  # type: ignore[arg-type]
    if taken is not None:
        _debug(
            "not reusing the previous kernel's ports %s: port %s is not free; using new ports",
            wanted,
            taken,
        )
        return None
    return dict(zip(PORT_NAMES, wanted, strict=True))  # type: ignore[arg-type]


def reused_secrets(previous: Mapping[str, Any], curve: bool) -> dict[str, Any]:
    """The key, signature scheme and (with *curve*, if it has them) Curve key pair of the
    previous connection, to put in the new connection info."""
    kept = {k: previous[k] for k in _KEPT if previous.get(k)}
    if isinstance(kept.get("key"), bytes):
        kept["key"] = kept["key"].decode("ascii")
    if curve and all(previous.get(k) for k in _CURVE_KEYS):
        for k in _CURVE_KEYS:
            value = previous[k]
            kept[k] = value.decode("ascii") if isinstance(value, bytes) else value
    return kept


def new_key() -> str:
    """Return a fresh 256-bit HMAC key as 64 hex characters."""
    return os.urandom(32).hex()  # what secrets.token_hex does, without importing it


def new_uuid() -> str:
    """A random (version 4) UUID string, as ``str(uuid.uuid4())`` gives.

    Built here: importing uuid also imports platform (~2 ms of a kernel's start-up).
    """
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def is_loopback(ip: str) -> bool:
    """True when *ip* only accepts connections from this host."""
    if ip == "localhost":
        return True
    import ipaddress  # deferred: kernels import this module at start-up

    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _runtime_dir() -> str:
    # Imported lazily: paths is a sibling module and this keeps connection light.
    from kernel_mgmt.paths import jupyter_runtime_dir

    return jupyter_runtime_dir()


def write_connection_file(path: str | None = None, **info: Any) -> tuple[str, dict[str, Any]]:
    """Write a connection file (mode 0600) and return ``(path, connection_info)``.

    Missing keys get defaults: tcp on 127.0.0.1, freshly allocated ports, a new key,
    hmac-sha256. With *path* None the file is ``kernel-<uuid>.json`` in the Jupyter
    runtime directory (created 0700 if needed). The write is atomic.
    """
    transport = info.setdefault("transport", "tcp")
    ip = info.setdefault("ip", LOCALHOST)
    missing = [name for name in PORT_NAMES if not info.get(name)]
    allocated: list[int] = []
    if missing:
        if transport == "tcp":
            allocated = allocate_ports(ip, len(missing))
            fresh = iter(allocated)
        else:  # ipc: the "port" is only a suffix of the socket path
            used = {info[name] for name in PORT_NAMES if info.get(name)}
            fresh = iter(p for p in range(1, 100) if p not in used)
        for name in missing:
            info[name] = next(fresh)
    try:
        return _write(path, info)
    except BaseException:
        release_ports(allocated)  # else held for RESERVATION_SECONDS by a file never written
        raise


def _write(path: str | None, info: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The rest of write_connection_file: key and defaults, then the atomic 0600 write."""
    if not info.get("key"):
        info["key"] = new_key()
    if isinstance(info["key"], bytes):
        info["key"] = info["key"].decode("ascii")
    info.setdefault("signature_scheme", "hmac-sha256")
    info.setdefault("kernel_name", "")

    if path is None:
        runtime = _runtime_dir()
        os.makedirs(runtime, mode=0o700, exist_ok=True)
        path = os.path.join(runtime, f"kernel-{new_uuid()}.json")
    path = os.path.abspath(path)
    data = json.dumps(info, indent=1).encode()
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.urandom(4).hex()}")
    # Created 0600 atomically (O_EXCL: never through someone else's planted file or link).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path, info


def read_connection_file(path: str) -> dict[str, Any]:
    """Read a connection file into a dict (``key`` stays a str, as in the file)."""
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except FileNotFoundError:
        raise ConnectionFileError(f"connection file {path} does not exist") from None
    except (OSError, ValueError) as e:
        raise ConnectionFileError(f"cannot read connection file {path}: {e}") from None
    if not isinstance(info, dict):
        raise ConnectionFileError(f"connection file {path} is not a JSON object")
    absent = [k for k in ("ip", *PORT_NAMES) if k not in info]
    if absent:
        raise ConnectionFileError(f"connection file {path} lacks {', '.join(absent)}")
    info.setdefault("transport", "tcp")
    info.setdefault("key", "")
    info.setdefault("signature_scheme", "hmac-sha256")
    return info


def channel_url(info: dict[str, Any], channel: str) -> str:
    """Return the ZeroMQ address of *channel* (one of CHANNELS) in *info*.

    tcp → ``tcp://127.0.0.1:5555`` (IPv6 in brackets); ipc → ``ipc://<ip>-<port>``,
    the same socket path jupyter_client and ipykernel derive.
    """
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
    port = info[f"{channel}_port"]
    ip = info["ip"]
    transport = info.get("transport", "tcp")
    if transport == "ipc":
        return f"ipc://{ip}-{port}"
    if ":" in ip:
        ip = f"[{ip}]"
    return f"{transport}://{ip}:{port}"
