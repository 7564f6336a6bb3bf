"""The [gateway] config table, its environment overrides and the launch environment."""

from __future__ import annotations

import getpass
import json

import pytest

from kernel_mgmt.config import ConfigError
from kernel_mgmt_provider_gateway._config import parse_config
from kernel_mgmt_provider_gateway._manager import kernel_env


def test_defaults_without_anything() -> None:
    cfg = parse_config({}, {})
    assert cfg.url is None and cfg.token is None
    assert cfg.kernel_env == ("KERNEL_USERNAME",)
    assert cfg.validate_cert is True and cfg.verify() is True
    assert cfg.timeout == 5.0


def test_config_values_and_derived_urls(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    cfg = parse_config(
        {
            "url": "https://eg.example.org:8888/",
            "token": "s3cret",
            "timeout": 3,
            "headers": {"X-Team": "blue"},
            "ca_certs": str(ca),
            "kernel_env": ["KERNEL_USERNAME", "KERNEL_NAMESPACE"],
        },
        {},
    )
    assert cfg.base_url == "https://eg.example.org:8888"
    assert cfg.websocket_url == "wss://eg.example.org:8888"
    assert cfg.http_headers() == {"X-Team": "blue", "Authorization": "token s3cret"}
    assert cfg.verify() == str(ca)
    assert "s3cret" not in repr(cfg)
    assert parse_config({"url": "http://h:1", "validate_cert": False}, {}).verify() is False


def test_precedence_of_environment_over_config_over_jupyter_vars() -> None:
    env = {"JUPYTER_GATEWAY_URL": "http://jupyter:1", "JUPYTER_GATEWAY_AUTH_TOKEN": "jt"}
    assert parse_config({}, env).url == "http://jupyter:1"
    assert parse_config({}, env).token == "jt"
    assert parse_config({"url": "http://cfg:2", "token": "ct"}, env).url == "http://cfg:2"
    assert parse_config({"url": "http://cfg:2", "token": "ct"}, env).token == "ct"
    env |= {"KERNEL_MGMT_GATEWAY_URL": "http://km:3", "KERNEL_MGMT_GATEWAY_TOKEN": "kt"}
    cfg = parse_config({"url": "http://cfg:2", "token": "ct"}, env)
    assert (cfg.url, cfg.token, cfg.url_source) == ("http://km:3", "kt", "KERNEL_MGMT_GATEWAY_URL")


def test_token_env() -> None:
    cfg = parse_config({"url": "http://h:1", "token_env": "MY_TOKEN"}, {"MY_TOKEN": "abc"})
    assert cfg.token == "abc"
    with pytest.raises(ConfigError, match=r"gateway.token_env.*MY_TOKEN.*not set"):
        parse_config({"url": "http://h:1", "token_env": "MY_TOKEN"}, {})
    with pytest.raises(ConfigError, match="either token or token_env"):
        parse_config({"token": "a", "token_env": "B"}, {"B": "b"})


@pytest.mark.parametrize(
    ("section", "key", "text"),
    [
        ({"url": "gateway:8888"}, "gateway.url", "must start with http:// or https://"),
        ({"url": 8888}, "gateway.url", "must be a string"),
        ({"timeout": 0}, "gateway.timeout", "> 0"),
        ({"timeout": "5"}, "gateway.timeout", "> 0"),
        ({"headers": {"X": 1}}, "gateway.headers", "header name = string"),
        ({"validate_cert": "no"}, "gateway.validate_cert", "true or false"),
        ({"ca_certs": "/nonexistent/ca.pem"}, "gateway.ca_certs", "is not a file"),
        ({"kernel_env": "KERNEL_USERNAME"}, "gateway.kernel_env", "list of environment"),
        ({"urll": "http://h:1"}, "gateway.urll", "unknown key"),
        ({"cache_ttl": -1}, "gateway.cache_ttl", ">= 0"),
    ],
)
def test_bad_values_name_the_key(section: dict, key: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(section, {})
    assert info.value.key == key
    assert text in str(info.value)


def test_bad_url_in_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({}, {"KERNEL_MGMT_GATEWAY_URL": "localhost:8888"})
    assert info.value.key == "KERNEL_MGMT_GATEWAY_URL"


def test_kernel_env_from_environment_cwd_and_launch_params() -> None:
    cfg = parse_config({"kernel_env": ["KERNEL_USERNAME", "KERNEL_NAMESPACE", "SPARK_OPTS"]}, {})
    env = kernel_env(
        cfg,
        "/work/project",
        {"kernel_cpus": 2, "KERNEL_IMAGE": "py:3.11", "flags": ["a"]},
        environ={"KERNEL_NAMESPACE": "team", "SPARK_OPTS": "--x", "OTHER": "no"},
    )
    assert env == {
        "KERNEL_USERNAME": getpass.getuser(),
        "KERNEL_NAMESPACE": "team",
        "SPARK_OPTS": "--x",
        "KERNEL_WORKING_DIR": "/work/project",
        "KERNEL_CPUS": "2",
        "KERNEL_IMAGE": "py:3.11",
        "KERNEL_FLAGS": json.dumps(["a"]),
    }
    # An explicit KERNEL_USERNAME wins over the login name; no cwd, no KERNEL_WORKING_DIR.
    env = kernel_env(cfg, None, None, environ={"KERNEL_USERNAME": "alice"})
    assert env == {"KERNEL_USERNAME": "alice"}
    assert kernel_env(parse_config({"kernel_env": []}, {}), None, None, environ={}) == {}
