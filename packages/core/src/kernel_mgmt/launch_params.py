"""Checking a launch's ``launch_params`` against the kernel type's JSON Schema.

``metadata.launch_parameter_schema`` of a kernel type is a JSON Schema; the finder validates
``launch_params`` with it (defaults filled in) before the provider is called, so nothing starts
when they are wrong. ``jsonschema`` is imported only when a kernel type has a schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["InvalidLaunchParams", "validate_launch_params"]


class InvalidLaunchParams(ValueError):
    """``launch_params`` that do not match the kernel type's ``launch_parameter_schema``."""

    def __init__(self, kernel: str, field: str | None, problem: str) -> None:
        self.kernel = kernel
        self.field = field
        self.problem = problem
        where = f" field {field!r}" if field else ""
        super().__init__(f"invalid launch_params for kernel {kernel!r}:{where} {problem}")


def _apply_defaults(schema: Mapping[str, Any], instance: Any) -> None:
    """Fill in ``default`` values of (nested) object properties, in place."""
    if not isinstance(instance, dict) or not isinstance(schema, Mapping):
        return
    import copy  # deferred, as jsonschema: only launches with a parameter schema get here

    for key, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, Mapping):
            continue
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _apply_defaults(sub, instance[key])


def validate_launch_params(
    kernel: str, attributes: Mapping[str, Any], launch_params: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Check ``launch_params`` against the kernel's ``metadata.launch_parameter_schema``.

    Returns the parameters with the schema's defaults filled in (``launch_params`` unchanged,
    or None, when the kernel type declares no schema).

    :raises InvalidLaunchParams: naming the kernel type and the offending field.
    """
    if launch_params is not None and not isinstance(launch_params, Mapping):
        what = type(launch_params).__name__
        raise InvalidLaunchParams(kernel, None, f"must be a mapping, not {what}")
    metadata = attributes.get("metadata") or {}
    schema = metadata.get("launch_parameter_schema") if isinstance(metadata, Mapping) else None
    if not schema:
        return dict(launch_params) if launch_params is not None else None
    import copy

    import jsonschema  # deferred: only launches with a parameter schema pay for it

    # A deep copy: defaults are filled into nested objects, and the caller's dict stays as is.
    params: dict[str, Any] = copy.deepcopy(dict(launch_params or {}))
    _apply_defaults(schema, params)
    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise InvalidLaunchParams(
            kernel, None, f"the kernel's launch_parameter_schema is itself invalid: {e.message}"
        ) from None
    error = jsonschema.exceptions.best_match(validator_cls(schema).iter_errors(params))
    if error is not None:
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, Mapping):
            missing = [k for k in error.validator_value if k not in error.instance]
            path.extend(missing[:1])
        elif error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            allowed = set((error.schema or {}).get("properties", {}))
            path.extend(sorted(set(error.instance) - allowed)[:1])
        raise InvalidLaunchParams(kernel, ".".join(path) or None, error.message)
    return params
