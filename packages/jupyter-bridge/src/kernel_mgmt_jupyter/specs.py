"""Kernel types as jupyter kernelspecs that name the ``kernel-mgmt`` provisioner.

A kernel type's attributes (``display_name``, ``language``, ``argv``, ``env``,
``interrupt_mode``, ``metadata``, ``resource_dir``) become the kernelspec dict jupyter_client's
``KernelSpec.to_dict()`` gives, with ``metadata.kernel_provisioner`` set to
``{"provisioner_name": "kernel-mgmt", "config": {"type_id": ...}}`` and
``metadata.kernel_mgmt`` telling the type id and provider (for tools and tests).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MARKER",
    "PROVISIONER_NAME",
    "kernelspec_dict",
    "provisioner_of",
    "resource_urls",
    "synced_type_id",
]

PROVISIONER_NAME = "kernel-mgmt"
#: ``metadata`` key of the kernelspecs the bridge makes; ``sync`` adds ``"synced": true``.
MARKER = "kernel_mgmt"
_PROTOCOL_VERSION = "5.3"  # jupyter_client's KernelSpec default
#: For kernel types without a folder of their own: an (almost) empty folder of this package,
#: so that jupyter_server's resource handler serves nothing else from here.
DEFAULT_RESOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources")


def provisioner_of(spec: Mapping[str, Any]) -> str | None:
    """The ``provisioner_name`` a kernelspec dict names, or None (the local provisioner)."""
    metadata = spec.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    stanza = metadata.get("kernel_provisioner")
    if isinstance(stanza, Mapping) and isinstance(stanza.get("provisioner_name"), str):
        return stanza["provisioner_name"]
    return None


def synced_type_id(spec: Mapping[str, Any]) -> str | None:
    """The type id of a kernelspec written by ``kernel-mgmt-jupyter sync``, else None."""
    metadata = spec.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    mark = metadata.get(MARKER)
    if isinstance(mark, Mapping) and mark.get("synced") and isinstance(mark.get("type_id"), str):
        return mark["type_id"]
    return None


def kernelspec_dict(
    type_id: str, attrs: Mapping[str, Any], *, display_name: str | None = None
) -> dict[str, Any]:
    """The kernelspec (``KernelSpec.to_dict()`` form) for one kernel type.

    A kernelspec folder that already names another provisioner keeps it (it is that
    provisioner's to launch); one that names ours keeps its config (``params``, or a
    ``type_id`` of its own), with ``type_id`` defaulting to its own type; every other type
    names ours.
    """
    metadata = dict(attrs.get("metadata") or {})
    stanza = metadata.get("kernel_provisioner")
    named = stanza.get("provisioner_name") if isinstance(stanza, Mapping) else None
    launched = type_id  # the type this kernelspec starts
    if named is None or named == PROVISIONER_NAME:
        config: dict[str, Any] = {}
        if named is not None and isinstance(stanza.get("config"), Mapping):
            config = dict(stanza["config"])
        if not isinstance(config.get("type_id"), str):
            config["type_id"] = type_id
        launched = config["type_id"]
        metadata["kernel_provisioner"] = {"provisioner_name": PROVISIONER_NAME, "config": config}
    metadata[MARKER] = {"type_id": launched, "provider": launched.partition("/")[0]}
    return {
        "argv": list(attrs.get("argv") or []),
        "env": dict(attrs.get("env") or {}),
        "display_name": display_name if display_name is not None else attrs["display_name"],
        "language": attrs.get("language") or "",
        "interrupt_mode": attrs.get("interrupt_mode") or "signal",
        "metadata": metadata,
        "kernel_protocol_version": attrs.get("kernel_protocol_version") or _PROTOCOL_VERSION,
    }


def resource_urls(base_url: str, name: str, resource_dir: str) -> dict[str, str]:
    """The ``resources`` of jupyter_server's kernelspec model: logos, kernel.js, kernel.css."""
    from urllib.parse import quote

    prefix = base_url.rstrip("/") + "/kernelspecs/" + quote(name, safe="")
    found: dict[str, str] = {}
    for resource in ("kernel.js", "kernel.css"):
        if os.path.exists(os.path.join(resource_dir, resource)):
            found[resource] = f"{prefix}/{resource}"
    for logo in sorted(glob.glob(os.path.join(glob.escape(resource_dir), "logo-*"))):
        fname = os.path.basename(logo)
        found[os.path.splitext(fname)[0]] = f"{prefix}/{fname}"
    return found
