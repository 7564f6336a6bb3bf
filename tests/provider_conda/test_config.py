"""The [conda] config section: defaults, and errors that name the key."""

from __future__ import annotations

from typing import Any

import pytest

import kernel_mgmt_provider_conda as provider
from kernel_mgmt.config import ConfigError
from kernel_mgmt_provider_conda._config import CondaConfig, parse_config


def test_defaults() -> None:
    cfg = parse_config({})
    assert cfg == CondaConfig()
    assert cfg.name_format == "{env}-{kernel}"
    assert cfg.include_base is True
    assert cfg.include_current is False
    assert cfg.conda_executable is None
    assert cfg.cache_ttl == 3600
    assert not cfg.excluded("/anything")


def test_all_keys_accepted() -> None:
    cfg = parse_config(
        {
            "env_filter": "envs/(ml|dl)-",
            "name_format": "{kernel}-in-{env}",
            "include_base": False,
            "include_current": True,
            "conda_executable": "auto",
            "executable_timeout": 3,
            "cache_ttl": 60,
            "cache_dir": "/tmp/x",
            "root_prefix": "/opt/conda",
            "envs_dirs": ["/opt/envs"],
        }
    )
    assert cfg.excluded("/opt/conda/envs/ml-1") and not cfg.excluded("/opt/conda/envs/web")
    assert cfg.envs_dirs == ("/opt/envs",)
    assert cfg.executable_timeout == 3.0


@pytest.mark.parametrize(
    ("section", "key", "fragment"),
    [
        ({"env_filter": "("}, "conda.env_filter", "not a valid regular expression"),
        ({"env_filter": 3}, "conda.env_filter", "regular expression string"),
        ({"name_format": "{env}-{nope}"}, "conda.name_format", "only {env} and {kernel}"),
        ({"name_format": "{env}/{kernel}"}, "conda.name_format", "'/'"),
        ({"name_format": ""}, "conda.name_format", "non-empty"),
        ({"include_base": "yes"}, "conda.include_base", "true or false"),
        ({"include_current": 1}, "conda.include_current", "true or false"),
        ({"cache_ttl": -1}, "conda.cache_ttl", ">= 0"),
        ({"cache_ttl": "1h"}, "conda.cache_ttl", "number"),
        ({"cache_ttl": True}, "conda.cache_ttl", "number"),
        ({"executable_timeout": 0}, "conda.executable_timeout", ">= 0.1"),
        ({"conda_executable": ["conda"]}, "conda.conda_executable", "path or 'auto'"),
        ({"envs_dirs": [1]}, "conda.envs_dirs", "list of folder paths"),
        ({"cache_dir": 5}, "conda.cache_dir", "path"),
        ({"root_prefix": False}, "conda.root_prefix", "path"),
        ({"env_fliter": "x"}, "conda.env_fliter", "unknown key"),
    ],
)
def test_bad_value_names_the_key(section: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        provider.load_config({"conda": section})
    assert info.value.key == key
    assert key in str(info.value)
    assert fragment in str(info.value)


def test_section_must_be_a_table() -> None:
    with pytest.raises(ConfigError, match="must be a table"):
        parse_config(["x"])


def test_bad_config_fails_the_finder_load(conda: Any) -> None:
    """Through the finder, a bad [conda] value marks the provider failed, naming the key."""
    from kernel_mgmt.discovery import KernelFinder

    finder = KernelFinder([provider], config={"conda": {"cache_ttl": "soon"}})
    assert list(finder.find_kernels()) == []
    problems = " ".join(str(p) for p in finder.problems)
    assert "conda.cache_ttl" in problems
