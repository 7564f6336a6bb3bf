"""The ``[conda]`` config section: its keys, defaults and checks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULT_NAME_FORMAT", "CondaConfig", "parse_config"]

DEFAULT_NAME_FORMAT = "{env}-{kernel}"
#: Environment variable naming the disk cache folder (tests point it at a tmp dir).
ENV_CACHE_DIR = "KERNEL_MGMT_CONDA_CACHE_DIR"


#: CondaConfig's fields, in order (its ``__init__`` parameters, equality and repr).
_FIELDS = (
    "env_filter",
    "name_format",
    "include_base",
    "include_current",
    "conda_executable",
    "executable_timeout",
    "cache_ttl",
    "cache_dir",
    "root_prefix",
    "envs_dirs",
)


class CondaConfig:
    """Validated settings of the conda provider (see the package README for each key).

    Immutable, compared and hashed by its fields (``_filter_re``, the compiled
    ``env_filter``, is left out). A plain class rather than a frozen dataclass: importing
    ``dataclasses`` imports ``inspect``, which would double this provider's share of every
    ``kernel-mgmt list``.
    """

    __slots__ = (*_FIELDS, "_filter_re")

    env_filter: str | None
    name_format: str
    include_base: bool
    include_current: bool
    conda_executable: str | None
    executable_timeout: float
    cache_ttl: float
    cache_dir: str | None
    root_prefix: str | None
    envs_dirs: tuple[str, ...]
    _filter_re: re.Pattern[str] | None

    def __init__(
        self,
        env_filter: str | None = None,
        name_format: str = DEFAULT_NAME_FORMAT,
        include_base: bool = True,
        include_current: bool = False,
        conda_executable: str | None = None,
        executable_timeout: float = 8.0,
        cache_ttl: float = 3600.0,
        cache_dir: str | None = None,
        root_prefix: str | None = None,
        envs_dirs: tuple[str, ...] = (),
        _filter_re: re.Pattern[str] | None = None,
    ) -> None:
        values = locals()
        for name in (*_FIELDS, "_filter_re"):
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: CondaConfig is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: CondaConfig is immutable")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELDS)
        return f"{type(self).__qualname__}({fields})"

    def excluded(self, prefix: str) -> bool:
        """Whether ``env_filter`` hides the environment at ``prefix`` (``re.search``).

        Exclusion, as nb_conda_kernels' ``env_filter``: users moving over keep their setting.
        """
        return self._filter_re is not None and self._filter_re.search(prefix) is not None

    def fingerprint(self) -> list[Any]:
        """The settings that change what discovery finds (part of the cache key)."""
        return [
            self.env_filter,
            self.name_format,
            self.include_base,
            self.include_current,
            self.conda_executable,
            self.root_prefix,
            list(self.envs_dirs),
        ]


def _error(key: str, problem: str) -> Exception:
    from kernel_mgmt.config import ConfigError

    return ConfigError(None, f"conda.{key}", problem)


def _number(section: Mapping[str, Any], key: str, default: float, minimum: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise _error(key, f"must be a number >= {minimum:g} (seconds), not {value!r}")
    return float(value)


def _bool(section: Mapping[str, Any], key: str, default: bool) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise _error(key, f"must be true or false, not {value!r}")
    return value


def _path(section: Mapping[str, Any], key: str) -> str | None:
    value = section.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _error(key, f"must be a path (string), not {value!r}")
    return value


#: The keys of the [conda] config table: one per CondaConfig field.
_KEYS = _FIELDS


def parse_config(section: Any) -> CondaConfig:
    """Check the ``[conda]`` table and return the settings.

    :raises kernel_mgmt.config.ConfigError: naming the offending key (``conda.<key>``).
    """
    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise _error("", f"the [conda] section must be a table, not {section!r}")
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise _error(unknown[0], f"unknown key (known keys: {', '.join(_KEYS)})")

    env_filter = section.get("env_filter")
    filter_re = None
    if env_filter is not None:
        if not isinstance(env_filter, str):
            raise _error("env_filter", f"must be a regular expression string, not {env_filter!r}")
        try:
            filter_re = re.compile(env_filter)
        except re.error as e:
            raise _error("env_filter", f"not a valid regular expression: {e}") from e

    name_format = section.get("name_format", DEFAULT_NAME_FORMAT)
    if not isinstance(name_format, str) or not name_format:
        raise _error("name_format", f"must be a non-empty string, not {name_format!r}")
    try:
        sample = name_format.format(env="env", kernel="kernel")
    except (KeyError, IndexError, ValueError, AttributeError) as e:
        raise _error(
            "name_format",
            f"{name_format!r} is not a valid format: only {{env}} and {{kernel}} may be used ({e})",
        ) from e
    if "/" in sample or not sample.strip():
        raise _error("name_format", f"{name_format!r} must not produce '/' or an empty name")

    envs_dirs = section.get("envs_dirs", [])
    if isinstance(envs_dirs, str):
        envs_dirs = [envs_dirs]
    if not isinstance(envs_dirs, list | tuple) or not all(isinstance(d, str) for d in envs_dirs):
        raise _error("envs_dirs", f"must be a list of folder paths, not {envs_dirs!r}")

    executable = section.get("conda_executable")
    if executable is not None and not isinstance(executable, str):
        raise _error("conda_executable", f"must be a path or 'auto', not {executable!r}")

    return CondaConfig(
        env_filter=env_filter,
        name_format=name_format,
        include_base=_bool(section, "include_base", True),
        include_current=_bool(section, "include_current", False),
        conda_executable=executable or None,
        executable_timeout=_number(section, "executable_timeout", 8.0, 0.1),
        cache_ttl=_number(section, "cache_ttl", 3600.0, 0),
        cache_dir=_path(section, "cache_dir"),
        root_prefix=_path(section, "root_prefix"),
        envs_dirs=tuple(envs_dirs),
        _filter_re=filter_re,
    )
