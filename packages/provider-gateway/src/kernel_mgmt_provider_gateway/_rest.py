"""The gateway's REST API (``/api/kernelspecs``, ``/api/kernels``) over httpx.

Messages name the gateway's URL and the HTTP status or the transport error, never the token
(it travels only in the ``Authorization`` header, which no message repeats).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from ._config import GatewayConfig

__all__ = [
    "GatewayError",
    "async_client",
    "check_response",
    "describe_error",
    "ssl_context",
    "sync_client",
]


class GatewayError(RuntimeError):
    """A request to the gateway failed: unreachable, timed out, refused or a bad answer.

    :attr:`status` is the HTTP status when the gateway answered, else None.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


_ssl_contexts: dict[tuple[bool, str | None], Any] = {}


def ssl_context(config: GatewayConfig) -> Any:
    """The TLS context for the gateway: made once per (validate_cert, ca_certs) and shared.

    For a plain ``http://`` gateway an empty context: TLS is never used (no redirects are
    followed), and loading the CA bundle costs every new HTTP client ~0.1-0.2 s.
    """
    import ssl

    if config.base_url.startswith("http://") and not config.websocket_url.startswith("wss://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    key = (config.validate_cert, config.ca_certs)
    ctx = _ssl_contexts.get(key)
    if ctx is None:
        cafile = config.ca_certs
        if cafile is None:
            try:
                import certifi  # httpx's own default CA bundle

                cafile = certifi.where()
            except ImportError:
                cafile = None
        ctx = ssl.create_default_context(cafile=cafile)
        if not config.validate_cert:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        _ssl_contexts[key] = ctx
    return ctx


def _client_args(config: GatewayConfig, timeout: float) -> dict[str, Any]:
    return {
        "base_url": config.base_url,
        "headers": config.http_headers(),
        "verify": ssl_context(config),
        "timeout": timeout,
        "follow_redirects": False,
        "trust_env": True,  # HTTPS_PROXY / NO_PROXY as every HTTP tool honours them
    }


def sync_client(config: GatewayConfig, timeout: float | None = None) -> httpx.Client:
    """A blocking client for discovery (the finder runs it in a worker thread)."""
    import httpx

    return httpx.Client(**_client_args(config, config.timeout if timeout is None else timeout))


def async_client(config: GatewayConfig, timeout: float | None = None) -> httpx.AsyncClient:
    """An asyncio client for launching and the lifecycle calls."""
    import httpx

    return httpx.AsyncClient(**_client_args(config, config.timeout if timeout is None else timeout))


def _reason(response: httpx.Response) -> str:
    """The gateway's own explanation: jupyter_server answers ``{"reason", "message"}``."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:200] if text and "<html" not in text[:100].lower() else ""
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("reason", "message") if body.get(k)]
        return ": ".join(dict.fromkeys(parts))[:300]
    return ""


def check_response(config: GatewayConfig, response: httpx.Response, what: str) -> None:
    """Raise :class:`GatewayError` for a non-2xx answer, saying what to do about it."""
    if response.is_success:
        return
    import http

    status = response.status_code
    try:  # the standard phrase: servers put their own message in the reason phrase too
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    url = f"{config.base_url}{response.request.url.path}"
    message = f"gateway {url} answered HTTP {status} {phrase}".rstrip() + f" to {what}"
    reason = _reason(response)
    if reason:
        message += f" ({reason})"
    if status == 403 and "KERNEL_USERNAME" in reason:
        message += (
            ": the gateway does not let this user start kernels; set KERNEL_USERNAME to a "
            "user it allows (it is sent through [gateway] kernel_env)"
        )
    elif status in (401, 403):
        where = "KERNEL_MGMT_GATEWAY_TOKEN or the [gateway] token/token_env setting"
        given = "the token given was refused" if config.token else "no token was given"
        message += f": {given}; set the gateway's auth token in {where}"
    elif status == 404 and what == "listing kernelspecs":
        message += ": is this the URL of a Jupyter Kernel Gateway or Enterprise Gateway?"
    raise GatewayError(message, status)


def describe_error(config: GatewayConfig, error: BaseException, what: str, timeout: float) -> str:
    """A transport error (refused, DNS, TLS, timeout) as one line naming the URL."""
    import httpx

    url = config.base_url
    if isinstance(error, httpx.TimeoutException):
        return f"gateway {url} did not answer {what} within {timeout:g} s ({type(error).__name__})"
    detail = str(error) or type(error).__name__
    return f"cannot reach gateway {url} for {what}: {type(error).__name__}: {detail}"
