"""Launch parameters for a kernel started through Jupyter.

A kernel type's ``metadata.launch_parameter_schema`` (JSON Schema) names its parameters; the
finder fills in the defaults and checks the values. Values come from, lowest first:

1. ``c.KernelMgmtProvisioner.launch_params`` (jupyter config): ``{type id or Jupyter name:
   {param: value}}``;
2. the kernelspec's provisioner config (``metadata.kernel_provisioner.config.params``), in a
   kernelspec folder written by hand for the ``kernel-mgmt`` provisioner;
3. ``KERNEL_<PARAM>`` variables of the environment the kernel is started with (as Enterprise
   Gateway passes them): the parameter's name upper-cased, other characters ``_``; the text is
   read as the schema's type says (``integer``, ``number``, ``boolean``; JSON for ``array``
   and ``object``);
4. a ``launch_params={...}`` keyword of ``KernelManager.start_kernel`` (jupyter_client keeps
   it for restarts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["ENV_PREFIX", "env_name", "from_env", "merge_launch_params"]

ENV_PREFIX = "KERNEL_"
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_name(param: str, prefix: str = ENV_PREFIX) -> str:
    """The environment variable that sets launch parameter ``param``."""
    return prefix + _NOT_ALNUM.sub("_", param).upper()


def _coerce(value: str, schema: Mapping[str, Any], variable: str) -> Any:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    try:
        if "integer" in kinds:
            return int(value)
        if "number" in kinds:
            return float(value)
        if "boolean" in kinds:
            lowered = value.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError("not a boolean (true/false, 1/0, yes/no, on/off)")
        if "array" in kinds or "object" in kinds:
            return json.loads(value)
    except ValueError as e:
        raise ValueError(f"environment variable {variable}={value!r}: {e}") from None
    return value


def from_env(
    schema: Mapping[str, Any] | None, env: Mapping[str, str], prefix: str = ENV_PREFIX
) -> dict[str, Any]:
    """The launch parameters that ``KERNEL_*`` variables in ``env`` set for ``schema``.

    :raises ValueError: naming the variable, for text the parameter's type cannot take.
    """
    if not schema:
        return {}
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    found: dict[str, Any] = {}
    for param, sub in properties.items():
        variable = env_name(param, prefix)
        if variable in env:
            found[param] = _coerce(env[variable], sub if isinstance(sub, Mapping) else {}, variable)
    return found


def merge_launch_params(*layers: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Later layers win, key by key; None when no layer gave anything."""
    merged: dict[str, Any] = {}
    given = False
    for layer in layers:
        if layer is None:
            continue
        given = True
        merged.update(layer)
    return merged if given else None
