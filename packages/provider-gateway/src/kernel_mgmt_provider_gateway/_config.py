"""The ``[gateway]`` config section and its environment overrides.

Precedence, highest first: ``KERNEL_MGMT_GATEWAY_URL`` / ``KERNEL_MGMT_GATEWAY_TOKEN``, then
the config file's ``[gateway]`` table (``token`` or ``token_env``), then jupyter_server's own
``JUPYTER_GATEWAY_URL`` / ``JUPYTER_GATEWAY_AUTH_TOKEN`` (so a user who already points
Jupyter Server at a gateway gets the same one here without writing a config).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kernel_mgmt.config import ConfigError

__all__ = [
    "ENV_JUPYTER_TOKEN",
    "ENV_JUPYTER_URL",
    "ENV_TOKEN",
    "ENV_URL",
    "GatewayConfig",
    "parse_config",
]

ENV_URL = "KERNEL_MGMT_GATEWAY_URL"
ENV_TOKEN = "KERNEL_MGMT_GATEWAY_TOKEN"
ENV_JUPYTER_URL = "JUPYTER_GATEWAY_URL"
ENV_JUPYTER_TOKEN = "JUPYTER_GATEWAY_AUTH_TOKEN"

_KEYS = (
    "url",
    "ws_url",
    "token",
    "token_env",
    "auth_scheme",
    "timeout",
    "launch_timeout",
    "headers",
    "validate_cert",
    "ca_certs",
    "kernel_env",
    "cache_ttl",
    "poll_interval",
)


@dataclass(frozen=True)
class GatewayConfig:
    """Validated settings of the gateway provider (see the package README for each key)."""

    url: str | None = None
    ws_url: str | None = None
    token: str | None = field(default=None, repr=False)  # never printed
    auth_scheme: str = "token"
    timeout: float = 5.0
    launch_timeout: float = 120.0
    #: Not in the repr either: a header may carry a credential (an API key, a cookie).
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    validate_cert: bool = True
    ca_certs: str | None = None
    kernel_env: tuple[str, ...] = ("KERNEL_USERNAME",)
    cache_ttl: float = 5.0
    poll_interval: float = 1.0
    #: Where the URL came from, for messages ("config", or an environment variable's name).
    url_source: str = ""

    @property
    def base_url(self) -> str:
        """The gateway's HTTP base URL without a trailing slash (empty when unset)."""
        return (self.url or "").rstrip("/")

    @property
    def websocket_url(self) -> str:
        """The websocket base URL: ``ws_url``, else ``url`` with http→ws, https→wss."""
        if self.ws_url:
            return self.ws_url.rstrip("/")
        base = self.base_url
        if base.startswith("https://"):
            return "wss://" + base[len("https://") :]
        if base.startswith("http://"):
            return "ws://" + base[len("http://") :]
        return base

    def http_headers(self) -> dict[str, str]:
        """Headers of every request: the configured ones plus ``Authorization`` with the token."""
        headers = dict(self.headers)
        if self.token:
            headers["Authorization"] = f"{self.auth_scheme} {self.token}"
        return headers

    def secrets(self) -> tuple[str, ...]:
        """Values never to show: the token and every configured header's value (any may be a
        credential; short ones are left, as replacing them would garble messages)."""
        values = [self.token or "", *(value for _name, value in self.headers)]
        return tuple(v for v in values if len(v) >= 4)

    def verify(self) -> Any:
        """httpx's ``verify``: False, a CA bundle path, or True (the system's CAs)."""
        if not self.validate_cert:
            return False
        return self.ca_certs or True

    def fingerprint(self) -> tuple[Any, ...]:
        """What decides a discovery answer (the cache key); the token enters as a hash only."""
        import hashlib

        token_hash = hashlib.sha256((self.token or "").encode()).hexdigest()
        return (self.base_url, token_hash, self.headers, self.validate_cert, self.ca_certs)


def _seconds(section: Mapping[str, Any], key: str, default: float, zero: bool = False) -> float:
    value = section.get(key, default)
    bad = isinstance(value, bool) or not isinstance(value, (int, float))
    if bad or value < 0 or (value == 0 and not zero):
        least = ">= 0" if zero else "> 0"
        raise ConfigError(
            None, f"gateway.{key}", f"must be a number of seconds {least}, not {value!r}"
        )
    return float(value)


def _string(section: Mapping[str, Any], key: str) -> str | None:
    value = section.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(None, f"gateway.{key}", f"must be a string, not {value!r}")
    return value or None


def _check_url(url: str, key: str, schemes: tuple[str, ...]) -> str:
    rest = url.split("://", 1)[-1]
    if "@" in rest.split("/", 1)[0]:
        # Not echoed: the URL holds a password. Messages name the URL, so it must hold none.
        raise ConfigError(
            None,
            key,
            "the URL carries credentials (user:password@host), which messages would show: "
            "give the gateway's token with token/token_env, or an Authorization header in "
            "headers",
        )
    if not url.startswith(schemes) or len(url.split("://", 1)[1].strip("/")) == 0:
        raise ConfigError(
            None,
            key,
            f"{url!r} is not a gateway URL: it must start with {' or '.join(schemes)} "
            "(e.g. http://gateway.example.org:8888)",
        )
    return url


def parse_config(section: Any, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Check the ``[gateway]`` table and apply the environment overrides.

    :raises kernel_mgmt.config.ConfigError: naming ``gateway.<key>`` for a bad value.
    """
    env = os.environ if environ is None else environ
    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise ConfigError(None, "gateway", "must be a table (a mapping)")
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise ConfigError(
            None, f"gateway.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(_KEYS))})"
        )
    url, source = env.get(ENV_URL) or None, ENV_URL
    if url is None:
        url, source = _string(section, "url"), "config key gateway.url"
    if url is None:
        url, source = env.get(ENV_JUPYTER_URL) or None, ENV_JUPYTER_URL
    if url is not None:
        key = source if source.startswith(("KERNEL_", "JUPYTER_")) else "gateway.url"
        url = _check_url(url.strip(), key, ("http://", "https://"))
    ws_url = _string(section, "ws_url")
    if ws_url is not None:
        ws_url = _check_url(ws_url.strip(), "gateway.ws_url", ("ws://", "wss://"))

    token = env.get(ENV_TOKEN) or None
    if token is None:
        token = _string(section, "token")
        token_env = _string(section, "token_env")
        if token is not None and token_env is not None:
            raise ConfigError(None, "gateway.token_env", "give either token or token_env, not both")
        if token_env is not None:
            token = env.get(token_env) or None
            if token is None:
                raise ConfigError(
                    None,
                    "gateway.token_env",
                    f"environment variable {token_env} (named by token_env) is not set",
                )
    if token is None:
        token = env.get(ENV_JUPYTER_TOKEN) or None

    headers = section.get("headers", {})
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ConfigError(None, "gateway.headers", "must be a table of header name = string")
    validate_cert = section.get("validate_cert", True)
    if not isinstance(validate_cert, bool):
        raise ConfigError(
            None, "gateway.validate_cert", f"must be true or false, not {validate_cert!r}"
        )
    ca_certs = _string(section, "ca_certs")
    if ca_certs is not None and not os.path.isfile(os.path.expanduser(ca_certs)):
        raise ConfigError(None, "gateway.ca_certs", f"{ca_certs} is not a file (a PEM CA bundle)")
    kernel_env = section.get("kernel_env", ["KERNEL_USERNAME"])
    if not isinstance(kernel_env, (list, tuple)) or not all(
        isinstance(n, str) and n and "=" not in n for n in kernel_env
    ):
        raise ConfigError(
            None,
            "gateway.kernel_env",
            f"must be a list of environment variable names: {kernel_env!r}",
        )
    auth_scheme = _string(section, "auth_scheme") or "token"
    return GatewayConfig(
        url=url,
        ws_url=ws_url,
        token=token,
        auth_scheme=auth_scheme,
        timeout=_seconds(section, "timeout", 5.0),
        launch_timeout=_seconds(section, "launch_timeout", 120.0),
        headers=tuple(sorted(headers.items())),
        validate_cert=validate_cert,
        ca_certs=os.path.expanduser(ca_certs) if ca_certs else None,
        kernel_env=tuple(kernel_env),
        cache_ttl=_seconds(section, "cache_ttl", 5.0, zero=True),
        poll_interval=_seconds(section, "poll_interval", 1.0),
        url_source=source if url else "",
    )
