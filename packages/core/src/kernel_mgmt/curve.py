"""CurveZMQ transport encryption: who gets keys, the keys themselves, socket options.

Conventions, as ipykernel (≥ 7.3) and jupyter_client (≥ 8.9) share them, so that every
pairing of our launchers, clients and kernels with theirs interoperates:

* The kernel manager makes one Curve key pair per kernel and writes it into the connection
  file as ``curve_publickey`` and ``curve_secretkey``: Z85 text, 40 characters each.
* The kernel is the CURVE **server** on all five sockets (shell, iopub, stdin, control,
  heartbeat): ``CURVE_SECRETKEY`` + ``CURVE_PUBLICKEY`` of that pair, ``CURVE_SERVER = 1``.
* A client sets ``CURVE_SERVERKEY`` = the kernel's public key. Its own key pair only
  encrypts (there is no ZAP allow-list): jupyter_client reuses the pair from the connection
  file on the channels and makes a fresh one for the heartbeat. We reuse the file's pair
  when it has one and make a fresh pair when only the public key is known.
* A kernelspec says the kernel can take keys with ``metadata.supported_encryption``
  (``["curve"]``, or the string ``"curve"``).
* The policy is ``transport_encryption`` = ``disabled`` | ``auto`` | ``required``
  (jupyter_client's word and values). jupyter_client defaults to ``disabled``; we default
  to ``auto``: keys for every TCP kernel whose kernelspec declares support.

A kernel that does not declare support is launched without keys under ``auto`` (an older
kernel would ignore them, bind in plain text, and a client using the keys could then never
reach it), and fails to launch with :class:`TransportEncryptionError` under ``required``,
before anything starts. ``required`` also gives keys to IPC kernels; ``auto`` does not:
their sockets live in a private 0700 directory, reachable only by the user who can read the
keys anyway.

This module is imported by kernels at start-up (``wrapper_kernel``) and by ``kernel-mgmt
list``: standard library only at import time; zmq is imported where keys are made.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

__all__ = [
    "DEFAULT_POLICY",
    "ENV_POLICY",
    "IPYKERNEL_MIN_VERSION",
    "POLICIES",
    "CurveKeyError",
    "TransportEncryptionError",
    "apply_client_options",
    "apply_server_options",
    "curve_keys",
    "declares_curve",
    "default_policy",
    "describe",
    "dist_info_version",
    "ipykernel_supports_curve",
    "mechanism_mismatch",
    "normalize_policy",
    "policy_scope",
    "provision",
    "redact",
]

#: The values of ``transport_encryption`` (jupyter_client's ``KernelManager`` trait).
POLICIES = ("disabled", "auto", "required")
DEFAULT_POLICY = "auto"
#: Overrides the default policy for this process (below a kernelspec's own option).
ENV_POLICY = "KERNEL_MGMT_TRANSPORT_ENCRYPTION"
#: The first ipykernel that binds with manager-provisioned Curve keys (ipykernel#1515).
IPYKERNEL_MIN_VERSION = (7, 3)
#: Connection-info keys holding Curve keys (Z85 text).
KEY_NAMES = ("curve_publickey", "curve_secretkey")
#: Z85 encodes a 32-byte Curve25519 key in 40 characters.
Z85_KEY_LENGTH = 40
_Z85_ALPHABET = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)

#: The policy a KernelFinder's config sets for the launches it routes (see policy_scope).
_scoped_policy: ContextVar[str | None] = ContextVar("transport_encryption", default=None)


class TransportEncryptionError(RuntimeError):
    """Encryption was required but cannot be had (kernel without support, no libsodium)."""


class CurveKeyError(ValueError):
    """Curve keys in connection info are malformed. The message never contains a key."""


# -- policy -------------------------------------------------------------------------------------


def normalize_policy(value: Any, where: str = "transport_encryption") -> str:
    """``value`` as one of :data:`POLICIES` (case-insensitive, as jupyter_client's trait).

    :raises ValueError: naming *where* (a config key or kernelspec file) and the choices.
    """
    normalized = value.strip().lower() if isinstance(value, str) else value
    if normalized not in POLICIES:
        raise ValueError(f"{where} must be one of {', '.join(POLICIES)}, not {value!r}")
    return str(normalized)


def default_policy() -> str:
    """The policy when a kernelspec sets none: the finder's config, else ``$KERNEL_MGMT_...``,
    else ``auto``."""
    scoped = _scoped_policy.get()
    if scoped is not None:
        return scoped
    env = os.environ.get(ENV_POLICY)
    if env:
        return normalize_policy(env, f"${ENV_POLICY}")
    return DEFAULT_POLICY


@contextlib.contextmanager
def policy_scope(policy: str | None) -> Iterator[None]:
    """Make *policy* the default for launches made inside this block (this task only).

    :class:`~kernel_mgmt.discovery.KernelFinder` wraps each provider's launch in it with the
    config's ``transport_encryption``, so every launcher a provider builds sees the config
    without each provider reading it. None leaves the default as it was.
    """
    if policy is None:
        yield
        return
    token = _scoped_policy.set(normalize_policy(policy))
    try:
        yield
    finally:
        _scoped_policy.reset(token)


def declares_curve(supported_encryption: Any) -> bool:
    """Does ``metadata.supported_encryption`` name ``curve`` (a list, or one string)?"""
    if isinstance(supported_encryption, str):
        return supported_encryption.strip().lower() == "curve"
    if isinstance(supported_encryption, (list, tuple, set, frozenset)):
        return any(str(item).strip().lower() == "curve" for item in supported_encryption)
    return False


def ipykernel_supports_curve(version: str | None) -> bool:
    """Does this ipykernel version (a distribution version string) bind with Curve keys?"""
    if not version:
        return False
    parts: list[int] = []
    for piece in version.split(".")[:2]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) >= IPYKERNEL_MIN_VERSION


def dist_info_version(entries: Any, distribution: str) -> str | None:
    """The version from a ``<distribution>-<version>.dist-info`` name among *entries*.

    *entries* are the names in a site-packages folder. Reading the folder name is how
    providers learn ipykernel's version without importing it (or importlib.metadata).
    """
    prefix = distribution.replace("-", "_").lower() + "-"
    for entry in entries:
        if entry.endswith(".dist-info") and entry.lower().startswith(prefix):
            return entry[len(prefix) : -len(".dist-info")]
    return None


def _kernel_policy(metadata: Mapping[str, Any] | None, where: str) -> str:
    """The kernelspec's ``metadata.transport_encryption``, else the default policy."""
    own = (metadata or {}).get("transport_encryption")
    if own is None:
        return default_policy()
    return normalize_policy(own, f"{where}: metadata.transport_encryption")


def describe(
    attributes: Mapping[str, Any], transport: str = "tcp", policy: str | None = None
) -> dict[str, Any]:
    """What a launch of this kernel type would do, for ``kernel-mgmt list --json``.

    ``{"policy": ..., "supported": bool, "encrypted": bool}``, plus ``"problem"`` when the
    policy cannot be met (``required`` without support) or the kernelspec's option is bad.
    *policy* is the default (the config's); the kernelspec's own option overrides it.
    """
    metadata = attributes.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    supported = declares_curve(metadata.get("supported_encryption"))
    try:
        if policy is not None and metadata.get("transport_encryption") is None:
            policy = normalize_policy(policy)
        else:
            policy = _kernel_policy(metadata, "kernelspec")
    except ValueError as e:
        return {"policy": None, "supported": supported, "encrypted": False, "problem": str(e)}
    out: dict[str, Any] = {"policy": policy, "supported": supported}
    if policy == "disabled":
        out["encrypted"] = False
    elif policy == "auto":
        out["encrypted"] = supported and transport == "tcp"
    else:
        out["encrypted"] = supported
        if not supported:
            out["problem"] = (
                "transport_encryption is 'required' but the kernelspec does not declare "
                "'curve' in metadata.supported_encryption: launching it fails"
            )
    return out


def provision(
    kernel: str,
    transport: str,
    supported_encryption: Any,
    metadata: Mapping[str, Any] | None = None,
    policy: str | None = None,
) -> dict[str, str]:
    """Decide whether *kernel* gets Curve keys and make them: ``{}`` or the two key entries.

    :param kernel: the kernel type, named in errors.
    :param supported_encryption: the kernelspec's ``metadata.supported_encryption``.
    :param metadata: the kernelspec's metadata (its own ``transport_encryption`` option).
    :param policy: overrides both the kernelspec's option and the default.
    :raises TransportEncryptionError: ``required`` for a kernel that does not declare support,
        a pyzmq built without libsodium, or a bad ``metadata.transport_encryption``.
    :raises ValueError: a bad *policy* argument.
    """
    if policy is not None:
        policy = normalize_policy(policy)
    else:
        own = (metadata or {}).get("transport_encryption")
        try:
            policy = _kernel_policy(metadata, f"kernel {kernel}")
        except ValueError as e:  # not launchable as it stands: say what to fix
            fix = "fix that kernelspec" if own is not None else f"fix ${ENV_POLICY}"
            raise TransportEncryptionError(f"{e}; {fix}") from None
    if policy == "disabled":
        return {}
    supported = declares_curve(supported_encryption)
    if policy == "auto" and not (supported and transport == "tcp"):
        return {}
    if policy == "required" and not supported:
        raise TransportEncryptionError(
            f"kernel {kernel}: transport_encryption is 'required' but its kernelspec does not "
            "declare 'curve' in metadata.supported_encryption, so it would ignore the keys. "
            "Use a kernel that supports CurveZMQ (ipykernel >= 7.3, wrapper_kernel), add the "
            "declaration if it does, or set transport_encryption to 'auto'"
        )
    import zmq  # deferred: kernel-mgmt list and kernels reading their file need no keys

    if not zmq.has("curve"):
        if policy == "required":
            raise TransportEncryptionError(
                f"kernel {kernel}: transport_encryption is 'required' but this pyzmq/libzmq "
                "has no CurveZMQ support (built without libsodium); install a pyzmq wheel "
                "from PyPI or set transport_encryption to 'auto'"
            )
        return {}
    public, secret = zmq.curve_keypair()
    return {"curve_publickey": public.decode("ascii"), "curve_secretkey": secret.decode("ascii")}


# -- keys and sockets ------------------------------------------------------------------------


def _check_key(value: Any, name: str, where: str) -> bytes:
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            value = None
    if (
        not isinstance(value, str)
        or len(value) != Z85_KEY_LENGTH
        or not _Z85_ALPHABET.issuperset(value)
    ):
        # Never echo the value: it may be (part of) a secret key.
        raise CurveKeyError(
            f"{name}{where} is not a CurveZMQ key ({Z85_KEY_LENGTH} characters of Z85 text); "
            "the kernel's manager writes both keys, so start the kernel again"
        )
    return value.encode("ascii")


def curve_keys(info: Mapping[str, Any], where: str = "") -> tuple[bytes, bytes | None] | None:
    """``(public key, secret key or None)`` as bytes from connection info, or None without keys.

    A secret key without its public key is an error (nobody could connect); a public key
    alone is enough for a client (it makes its own pair).

    :param where: text after the key name in errors, e.g. ``" in /path/kernel-1.json"``.
    :raises CurveKeyError: malformed keys (the message names the key, never its value).
    """
    public = info.get("curve_publickey")
    secret = info.get("curve_secretkey")
    if public is None and secret is None:
        return None
    if public is None:
        raise CurveKeyError(
            f"connection info{where} has curve_secretkey but no curve_publickey; "
            "both come from the kernel's manager, so start the kernel again"
        )
    pub = _check_key(public, "curve_publickey", where)
    sec = None if secret is None else _check_key(secret, "curve_secretkey", where)
    return pub, sec


def apply_server_options(sock: Any, keys: tuple[bytes, bytes | None]) -> None:
    """Make *sock* a CURVE server with the kernel's key pair (before it binds)."""
    public, secret = keys
    if secret is None:
        raise CurveKeyError("a kernel needs curve_secretkey as well as curve_publickey")
    import zmq

    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
    sock.setsockopt(zmq.CURVE_SERVER, 1)


def apply_client_options(sock: Any, keys: tuple[bytes, bytes | None]) -> None:
    """Make *sock* a CURVE client of the kernel whose public key is ``keys[0]`` (before connect).

    The client's own pair is the connection file's (as jupyter_client does), or a fresh one
    when only the public key is known: without a ZAP handler the server accepts any client
    key, so the pair only serves the encryption.
    """
    import zmq

    public, secret = keys
    if secret is None:
        own_public, secret = zmq.curve_keypair()
    else:
        own_public = public
    sock.setsockopt(zmq.CURVE_SERVERKEY, public)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, own_public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)


#: Raised by a client's ``wait_for_ready`` for a kernel that ignored its keys.
IGNORED_KEYS = (
    "the kernel answers without CurveZMQ although its connection file gives it keys (the "
    "handshake's security mechanisms differ): it does not support them, whatever its "
    "kernelspec's metadata.supported_encryption says. Remove that declaration, or set "
    "transport_encryption to 'disabled' for this kernel"
)


async def mechanism_mismatch(sock: Any) -> None:
    """Return once a handshake on the zmq.asyncio *sock* fails because the peer uses another
    security mechanism (ZMTP 3: NULL against our CURVE): a kernel that ignored its keys.

    A wrong key is not reported here (the kernel drops such a handshake silently, and a
    client retries); only the mismatch is certain. The monitor ends with the call.
    """
    import zmq
    from zmq.utils.monitor import parse_monitor_message

    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
    try:
        while True:
            event = parse_monitor_message(await monitor.recv_multipart())
            if event["value"] == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
                return
    finally:
        sock.disable_monitor()
        monitor.close(linger=0)


#: Connection-info keys whose values are secrets.
SECRET_KEYS = ("key", "curve_secretkey")


def redact(info: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of connection info safe to print or log: secrets replaced by ``"<hidden>"``."""
    return {k: ("<hidden>" if k in SECRET_KEYS and v else v) for k, v in info.items()}
