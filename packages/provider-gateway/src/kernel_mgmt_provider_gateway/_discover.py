"""Kernel types from the gateway's ``GET /api/kernelspecs``, with a short-lived cache.

Each remote kernelspec ``NAME`` becomes ``gateway/NAME`` with its display name, language and
metadata (``launch_parameter_schema`` included, where the gateway's kernelspec has one), which
declares CurveZMQ support for the local bridge (``supported_encryption: ["curve"]``).
Answers, failures included, are kept for ``cache_ttl`` seconds so that a burst of listings
(an editor starting up, several finders) costs the gateway one request, and an unreachable
gateway costs its timeout once per ``cache_ttl``, not once per call.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import TYPE_CHECKING, Any

from ._rest import GatewayError, check_response, describe_error, sync_client

if TYPE_CHECKING:  # pragma: no cover
    from ._config import GatewayConfig

__all__ = ["clear_cache", "find_kernelspecs", "kernel_records"]

_cache: dict[tuple[Any, ...], tuple[float, list[tuple[str, dict[str, Any]]] | GatewayError]] = {}
_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every cached answer (tests; a user who just changed the gateway)."""
    with _lock:
        _cache.clear()


def kernel_records(config: GatewayConfig, body: Any) -> list[tuple[str, dict[str, Any]]]:
    """Turn the body of ``GET /api/kernelspecs`` into sorted ``(name, attributes)`` records.

    :raises GatewayError: for a body that is not the kernelspecs document.
    """
    specs = body.get("kernelspecs") if isinstance(body, dict) else None
    if not isinstance(specs, dict):
        raise GatewayError(
            f"gateway {config.base_url}/api/kernelspecs answered with something that is not a "
            "kernelspecs document (no 'kernelspecs' object): is this a Jupyter gateway?"
        )
    records = []
    for key, model in specs.items():
        if not isinstance(model, dict):
            continue
        name = model.get("name") or key
        spec = model.get("spec") if isinstance(model.get("spec"), dict) else {}
        if not isinstance(name, str) or not name or "/" in name or any(c.isspace() for c in name):
            continue  # the finder would reject it; nothing a user could launch
        metadata = spec.get("metadata") if isinstance(spec.get("metadata"), dict) else {}
        metadata, remote_encryption = _bridge_encryption(metadata)
        language = spec.get("language") if isinstance(spec.get("language"), str) else ""
        display = spec.get("display_name") if isinstance(spec.get("display_name"), str) else name
        attrs: dict[str, Any] = {
            "display_name": display,
            "language": language,
            "language_info": {"name": language},
            "metadata": metadata,
            "gateway": {
                "url": config.base_url,
                "kernelspec": name,
                "remote_interrupt_mode": spec.get("interrupt_mode", "signal"),
                "resources": copy.deepcopy(model.get("resources") or {}),
            },
        }
        if remote_encryption:
            attrs["gateway"]["remote_encryption"] = remote_encryption
        if body.get("default") == name:
            attrs["gateway"]["default"] = True
        records.append((name, attrs))
    records.sort(key=lambda r: r[0])
    return records


def _bridge_encryption(metadata: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metadata as our launch reads it, and the remote kernelspec's encryption keys.

    Clients talk to the local bridge, which is ours and always a CurveZMQ server: the type
    declares ``supported_encryption: ["curve"]`` like our wrapper kernels, so the policy
    (``transport_encryption`` in the config, ``$KERNEL_MGMT_TRANSPORT_ENCRYPTION``) decides
    as for them. The remote kernelspec's ``supported_encryption``/``transport_encryption``
    concern the gateway's own link to its kernel, not our loopback sockets: they are kept
    aside under ``gateway.remote_encryption``, for information.
    """
    metadata = copy.deepcopy(metadata)
    remote = {
        key: metadata.pop(key)
        for key in ("supported_encryption", "transport_encryption")
        if key in metadata
    }
    metadata["supported_encryption"] = ["curve"]
    return metadata, remote


def _fetch(config: GatewayConfig) -> list[tuple[str, dict[str, Any]]]:
    import httpx

    what = "listing kernelspecs"
    try:
        with sync_client(config) as client:
            response = client.get("/api/kernelspecs")
    except httpx.HTTPError as e:
        raise GatewayError(describe_error(config, e, what, config.timeout)) from None
    check_response(config, response, what)
    try:
        body = response.json()
    except ValueError:
        raise GatewayError(
            f"gateway {config.base_url}/api/kernelspecs did not answer JSON: is this a "
            "Jupyter gateway?"
        ) from None
    return kernel_records(config, body)


def find_kernelspecs(config: GatewayConfig) -> list[tuple[str, dict[str, Any]]]:
    """The gateway's kernel types (copies: callers may change them).

    :raises GatewayError: the gateway is unreachable, slow, refuses us or is not a gateway
        (cached like a success).
    """
    key = config.fingerprint()
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit is not None and now - hit[0] < config.cache_ttl:
        value = hit[1]
    else:
        try:
            value = _fetch(config)
        except GatewayError as e:
            value = e
        with _lock:
            _cache[key] = (time.monotonic(), value)
    if isinstance(value, GatewayError):
        raise GatewayError(str(value), value.status)
    return copy.deepcopy(value)
