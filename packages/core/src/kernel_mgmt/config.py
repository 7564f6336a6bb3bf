"""kernel_mgmt's TOML configuration: where it lives, its schema, and merging.

Files, lowest priority first (later files override earlier ones, table by table):

1. ``<sys.prefix>/etc/kernel_mgmt/config.toml`` — the environment's config;
2. ``<user config dir>/config.toml`` (platformdirs, e.g. ``~/.config/kernel_mgmt/``);
3. the file named by ``KERNEL_MGMT_CONFIG`` (it must exist when the variable is set).

Example::

    [providers]
    allow = ["spec", "conda"]   # load only these (default: all installed)
    deny = ["pyimport"]         # never load these
    timeout = 10                # seconds each provider may take per hook call

    [providers.timeouts]        # per provider id, overriding `timeout` for that provider
    conda = 30

    transport_encryption = "auto"   # CurveZMQ keys for kernels that declare support
                                    # ("disabled" | "auto" | "required"; see kernel_mgmt.curve)

    [conda]                     # one free-form table per provider id, given to that provider
    envs_dirs = ["/opt/envs"]

Missing default files are fine. jsonschema is imported only when a file exists.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "CONFIG_FILENAME",
    "CONFIG_SCHEMA",
    "DEFAULT_TIMEOUT",
    "ENV_CONFIG",
    "ConfigError",
    "config_paths",
    "load_config",
    "merge",
    "transport_encryption_policy",
    "validate_config",
]

CONFIG_FILENAME = "config.toml"
ENV_CONFIG = "KERNEL_MGMT_CONFIG"
#: Seconds a provider may take in one hook call before it is reported and skipped.
DEFAULT_TIMEOUT = 10.0

_ID_PATTERN = "^[a-z0-9][a-z0-9._-]*$"

#: JSON Schema of one config file (and of the merged result).
CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "kernel_mgmt configuration",
    "type": "object",
    "propertyNames": {"pattern": _ID_PATTERN},
    "properties": {
        "providers": {
            "description": "Which providers load, and how long each may take.",
            "type": "object",
            "properties": {
                "allow": {
                    "description": "Load only these provider ids.",
                    "type": "array",
                    "items": {"type": "string", "pattern": _ID_PATTERN},
                },
                "deny": {
                    "description": "Never load these provider ids.",
                    "type": "array",
                    "items": {"type": "string", "pattern": _ID_PATTERN},
                },
                "timeout": {
                    "description": "Seconds per provider hook call.",
                    "type": "number",
                    "exclusiveMinimum": 0,
                },
                "timeouts": {
                    "description": "Seconds per hook call for one provider id (overrides timeout).",
                    "type": "object",
                    "propertyNames": {"pattern": _ID_PATTERN},
                    "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
                },
            },
            "additionalProperties": False,
        },
        "transport_encryption": {
            "description": "CurveZMQ transport encryption: 'disabled', 'auto' (keys for TCP "
            "kernels whose kernelspec declares metadata.supported_encryption) or 'required' "
            "(a kernel without support fails to launch). A kernelspec's own "
            "metadata.transport_encryption overrides it.",
            "enum": ["disabled", "auto", "required"],
        },
    },
    # Every other table belongs to the provider of that id and is free-form.
    "additionalProperties": {"type": "object"},
}


class ConfigError(ValueError):
    """A config file that cannot be read or does not match :data:`CONFIG_SCHEMA`."""

    def __init__(self, path: str | None, key: str | None, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        where = path or "kernel_mgmt config"
        at = f" at key {key!r}" if key else ""
        super().__init__(f"{where}{at}: {problem}")


def _user_config_dir() -> str:
    """platformdirs' user config dir for "kernel_mgmt" (e.g. ``~/.config/kernel_mgmt``).

    On Linux the common cases (an absolute ``$XDG_CONFIG_HOME``, or ``~/.config`` under an
    absolute ``$HOME``) are computed here with platformdirs' rules, because importing
    platformdirs (pathlib, tempfile, ...) costs every ``kernel-mgmt list`` several ms; a test
    checks both agree. Anything else asks platformdirs.
    """
    if sys.platform.startswith("linux"):
        xdg = os.environ.get("XDG_CONFIG_HOME", "")
        if os.path.isabs(xdg):
            return os.path.join(xdg, "kernel_mgmt")
        home = os.environ.get("HOME")
        if home is None or os.path.isabs(home):
            base = os.path.expanduser("~/.config")
            if os.path.isabs(base):
                return os.path.join(base, "kernel_mgmt")
    import platformdirs

    return platformdirs.user_config_dir("kernel_mgmt", appauthor=False)


def config_paths() -> list[str]:
    """Candidate config files, lowest priority first (existing or not)."""
    candidates = [
        os.path.join(sys.prefix, "etc", "kernel_mgmt", CONFIG_FILENAME),
        os.path.join(_user_config_dir(), CONFIG_FILENAME),
    ]
    explicit = os.environ.get(ENV_CONFIG)
    if explicit:
        candidates.append(explicit)
    return candidates


def validate_config(config: Mapping[str, Any], path: str | None = None) -> None:
    """Check one config mapping against :data:`CONFIG_SCHEMA`.

    :raises ConfigError: naming ``path`` and the offending key (dotted, e.g. ``providers.allow``).
    """
    import jsonschema  # deferred: ~85 ms, and only needed when a config file exists

    validator = jsonschema.Draft202012Validator(CONFIG_SCHEMA)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    parts = [str(p) for p in error.absolute_path]
    if "propertyNames" in error.absolute_schema_path:
        # The offending key is the instance itself.
        what = "section name" if not parts else "key"
        parts.append(str(error.instance))
        problem = f"{what} {error.instance!r} is not a provider id ({_ID_PATTERN})"
    elif error.validator == "additionalProperties" and error.validator_value is False:
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        parts.extend(extra[:1])
        problem = f"unknown key (allowed: {', '.join(sorted(error.schema['properties']))})"
    else:
        problem = error.message
    raise ConfigError(path, ".".join(parts) or None, problem)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``: tables merge recursively, values replace."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def _read(path: str) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(path, None, f"cannot read: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, None, f"not valid TOML: {e}") from e
    except UnicodeDecodeError as e:  # TOML files are UTF-8
        raise ConfigError(path, None, f"not valid UTF-8 (TOML files must be): {e}") from e
    validate_config(data, path)
    return data


def load_config(paths: Iterable[str] | None = None) -> dict[str, Any]:
    """Read, validate and merge the config files; ``{}`` when there are none.

    ``paths`` defaults to :func:`config_paths`. The file named by ``KERNEL_MGMT_CONFIG``
    must exist; the default locations may be missing.

    :raises ConfigError: for an unreadable, malformed or invalid file (naming it and the key).
    """
    explicit = os.environ.get(ENV_CONFIG) if paths is None else None
    merged: dict[str, Any] = {}
    for path in config_paths() if paths is None else paths:
        if not os.path.isfile(path):
            if explicit and path == explicit:
                what = "is not a file" if os.path.exists(path) else "does not exist"
                raise ConfigError(path, None, f"file named by {ENV_CONFIG} {what}")
            continue
        merged = merge(merged, _read(path))
    return merged


def _check_seconds(value: Any, key: str) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
    ):
        raise ConfigError(None, key, f"must be a number > 0, not {value!r}")


def providers_section(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[providers]`` table of ``config`` (empty when absent), its values checked.

    Files are validated when read; this also covers a mapping an application passes in
    code, without importing jsonschema.

    :raises ConfigError: naming the offending key.
    """
    section = config.get("providers", {})
    if not isinstance(section, Mapping):
        raise ConfigError(None, "providers", "must be a table (a mapping)")
    _check_seconds(section.get("timeout"), "providers.timeout")
    timeouts = section.get("timeouts")
    if timeouts is not None:
        if not isinstance(timeouts, Mapping):
            raise ConfigError(
                None, "providers.timeouts", "must be a table of provider id = seconds"
            )
        for pid, seconds in timeouts.items():
            _check_seconds(seconds, f"providers.timeouts.{pid}")
    for key in ("allow", "deny"):
        ids = section.get(key)
        if ids is not None and (
            not isinstance(ids, (list, tuple)) or not all(isinstance(i, str) for i in ids)
        ):
            raise ConfigError(None, f"providers.{key}", f"must be a list of provider ids: {ids!r}")
    return dict(section)


def transport_encryption_policy(config: Mapping[str, Any]) -> str | None:
    """The config's ``transport_encryption`` (lower-cased), or None when it sets none.

    :raises ConfigError: for a value outside ``disabled``/``auto``/``required``.
    """
    value = config.get("transport_encryption")
    if value is None:
        return None
    from .curve import normalize_policy

    try:
        return normalize_policy(value)
    except ValueError as e:
        raise ConfigError(None, "transport_encryption", str(e)) from None
