"""One remote kernel: started with ``POST /api/kernels``, bridged, watched, deleted.

A :class:`RemoteKernel` owns a private event loop in a daemon thread, holding its HTTP client,
its websocket and its :class:`~._bridge.Bridge`. Lifecycle calls from any loop are run there.
The kernel counts as gone (``is_alive`` False, pending requests fail with ``KernelDied``) as
soon as any of these is seen: the websocket closes; the kernel publishes its
``shutdown_reply``; the gateway publishes status ``restarting`` or ``dead``; the kernel is no
longer in ``GET /api/kernels/<id>`` (deleted or culled), polled every ``poll_interval``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ._rest import GatewayError, async_client, check_response, describe_error

if TYPE_CHECKING:  # pragma: no cover
    from ._bridge import Bridge
    from ._config import GatewayConfig

log = logging.getLogger("kernel_mgmt_provider_gateway")

__all__ = ["GatewayLaunchError", "RedactingLogger", "RemoteKernel", "delete_all"]

#: Remote kernels of this process not yet deleted: deleted at exit.
_live: set[RemoteKernel] = set()
_live_lock = threading.Lock()
_atexit_registered = False
#: DELETE attempts while the gateway answers 5xx (0.5 s apart).
_DELETE_TRIES = 6


class GatewayLaunchError(GatewayError):
    """Starting a kernel on the gateway, or connecting to it, failed (the message says why)."""


def _ssl_context(config: GatewayConfig) -> Any:
    if not config.websocket_url.startswith("wss://"):
        return None
    from ._rest import ssl_context

    return ssl_context(config)


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger replacing each of *secrets* by ``<hidden>`` in messages and their arguments."""

    def __init__(self, logger: logging.Logger, secrets: tuple[str, ...]) -> None:
        super().__init__(logger, {})
        self.secrets = secrets

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, "<hidden>")
        elif isinstance(value, (bytes, bytearray)):
            for secret in self.secrets:
                value = value.replace(secret.encode(), b"<hidden>")
        return value

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            msg = self._clean(msg)
            if self.secrets:
                args = tuple(self._clean(a) for a in args)
            kwargs.setdefault("stacklevel", 2)
            self.logger.log(level, msg, *args, **kwargs)


class RemoteKernel:
    """A kernel on the gateway and its local bridge (see the module docstring)."""

    def __init__(
        self,
        config: GatewayConfig,
        kernelspec: str,
        label: str,
        curve_keys: dict[str, str] | None = None,
    ) -> None:
        from ._bridge import run_loop_thread

        self.config = config
        #: ``curve_publickey``/``curve_secretkey`` for the bridge ({} without encryption).
        self.curve_keys = dict(curve_keys or {})
        self.kernelspec = kernelspec
        self.label = label
        self.remote_id: str | None = None
        self.connection_file: str | None = None
        self.bridge: Bridge | None = None
        self.deleted = False
        self._http: Any = None
        self._watcher: asyncio.Task[Any] | None = None
        self._opening: asyncio.Task[Any] | None = None
        self._lock = threading.Lock()
        self._dead = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False
        self.loop, self.thread = run_loop_thread(f"kernel_mgmt-gateway-{kernelspec}")

    def __repr__(self) -> str:  # no keys, no token: reprs end up in logs
        return f"<RemoteKernel {self.label} on {self.config.base_url} id {self.remote_id}>"

    # -- running on the private loop ----------------------------------------------------------

    def call(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """Run ``coro`` on the private loop; await the result from the calling loop."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    @property
    def dead_reason(self) -> str | None:
        return self.bridge.dead_reason if self.bridge is not None else None

    def is_dead(self) -> bool:
        return self._dead.is_set()

    def _on_dead(self, reason: str) -> None:
        with self._lock:
            self._dead.set()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(lambda f=fut: f.done() or f.set_result(None))

    async def wait_dead(self, timeout: float | None) -> None:
        """Wait (on the caller's loop) until the kernel is gone or ``timeout`` passes."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._dead.is_set():
                return
            self._waiters.append((loop, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove((loop, fut))

    # -- start --------------------------------------------------------------------------------

    async def open(self, env: dict[str, str], kernel_id: str | None) -> dict[str, Any]:
        """Start the remote kernel, connect its websocket, bind the bridge; runs on the loop."""
        import httpx

        from ._bridge import Bridge

        config = self.config
        self._opening = asyncio.current_task()
        self._http = async_client(config)
        what = f"starting kernelspec {self.kernelspec!r}"
        post = asyncio.ensure_future(
            self._http.post(
                "/api/kernels",
                json={"name": self.kernelspec, "env": env},
                timeout=config.launch_timeout,
            )
        )
        try:
            response = await asyncio.shield(post)
        except asyncio.CancelledError:
            # The launch was given up (a timeout, Ctrl-C) while the gateway starts the
            # kernel: learn its id anyway, so that closing deletes it instead of leaking it.
            with contextlib.suppress(Exception):
                late = await asyncio.wait_for(post, config.launch_timeout)
                if late.is_success:
                    self.remote_id = str(late.json()["id"])
                    self._register()
            raise
        except httpx.HTTPError as e:
            raise GatewayLaunchError(
                describe_error(config, e, what, config.launch_timeout)
            ) from None
        try:
            check_response(config, response, what)
            model = response.json()
            self.remote_id = str(model["id"])
        except (ValueError, KeyError, TypeError):
            raise GatewayLaunchError(
                f"gateway {config.base_url}/api/kernels answered {what} without a kernel id"
            ) from None
        except GatewayError as e:
            raise GatewayLaunchError(str(e), e.status) from None
        self._register()
        ws = await self._connect()
        from kernel_mgmt.connection import new_key
        from kernel_mgmt.curve import curve_keys

        bridge = self.bridge = Bridge(new_key(), self.label, curve_keys(self.curve_keys))
        ports = bridge.bind()
        bridge.on_dead(self._on_dead)
        bridge.attach(ws)
        self._watcher = asyncio.get_running_loop().create_task(self._watch())
        return self._write_connection_file(ports, bridge.key, kernel_id or self.remote_id)

    async def _connect(self) -> Any:
        from websockets.asyncio.client import connect

        from ._wire import V1_PROTOCOL

        config = self.config
        url = (
            f"{config.websocket_url}/api/kernels/{self.remote_id}/channels"
            f"?session_id={uuid.uuid4().hex}"
        )
        try:
            return await connect(
                url,
                additional_headers=config.http_headers(),
                subprotocols=[V1_PROTOCOL],  # type: ignore[list-item]
                max_size=None,  # outputs (images, dataframes) can be large
                compression=None,  # loopback and LAN: deflate costs more than it saves
                open_timeout=config.launch_timeout,
                ssl=_ssl_context(config),
                ping_interval=20,
                ping_timeout=None,  # a long-running cell must not look like a dead link
                # At DEBUG websockets logs every handshake header, Authorization included.
                logger=RedactingLogger(logging.getLogger("websockets.client"), config.secrets()),
            )
        except Exception as e:
            where = f"{config.websocket_url}/api/kernels/{self.remote_id}/channels"
            raise GatewayLaunchError(
                f"cannot open the channels websocket {where} of kernel {self.label}: "
                f"{type(e).__name__}: {e}"
            ) from None

    def _write_connection_file(self, ports: dict[str, int], key: str, name: str) -> dict[str, Any]:
        from kernel_mgmt.connection import write_connection_file
        from kernel_mgmt.paths import jupyter_runtime_dir

        runtime = jupyter_runtime_dir()
        os.makedirs(runtime, mode=0o700, exist_ok=True)
        path, info = write_connection_file(
            os.path.join(runtime, f"kernel-{name}.json"),
            transport="tcp",
            ip="127.0.0.1",
            key=key,
            signature_scheme="hmac-sha256",
            kernel_name=self.kernelspec,
            **ports,
            **self.curve_keys,
        )
        self.connection_file = path
        return info

    async def _watch(self) -> None:
        """Poll ``GET /api/kernels/<id>``: a kernel deleted or culled elsewhere is gone."""
        assert self.bridge is not None
        interval = self.config.poll_interval
        while self.bridge.dead_reason is None:
            await asyncio.sleep(interval)
            try:
                response = await self._http.get(f"/api/kernels/{self.remote_id}")
            except Exception as e:  # unreachable for a moment: the websocket tells if for good
                log.debug("%s: polling the gateway failed: %s", self.label, e)
                continue
            if response.status_code == 404:
                gone = f"the kernel is no longer on the gateway {self.config.base_url}"
                self.bridge.mark_dead(f"{gone} (deleted or culled)")
            elif response.is_success:
                with contextlib.suppress(ValueError, AttributeError):
                    if response.json().get("execution_state") == "dead":
                        self.bridge.mark_dead("the gateway reports the kernel dead")

    # -- lifecycle ----------------------------------------------------------------------------

    async def interrupt(self) -> None:
        """``POST /api/kernels/<id>/interrupt``."""
        import httpx

        what = f"interrupting kernel {self.remote_id}"
        try:
            response = await self._http.post(f"/api/kernels/{self.remote_id}/interrupt")
        except httpx.HTTPError as e:
            raise GatewayError(describe_error(self.config, e, what, self.config.timeout)) from None
        check_response(self.config, response, what)

    async def delete(self) -> None:
        """``DELETE /api/kernels/<id>`` (an already deleted kernel is fine); the kernel is gone."""
        import httpx

        if self.remote_id is None or self.deleted or self._http is None:
            return
        what = f"deleting kernel {self.remote_id}"
        for attempt in range(_DELETE_TRIES):
            try:
                response = await self._http.delete(
                    f"/api/kernels/{self.remote_id}", timeout=self.config.launch_timeout
                )
            except httpx.HTTPError as e:
                timeout = self.config.launch_timeout
                raise GatewayError(describe_error(self.config, e, what, timeout)) from None
            # A kernel the gateway is restarting can make jupyter_server fail the DELETE
            # with a 500 for a moment: try again before giving up.
            if response.status_code < 500 or attempt == _DELETE_TRIES - 1:
                break
            await asyncio.sleep(0.5)
        if response.status_code != 404:
            check_response(self.config, response, what)
        self.deleted = True
        self._unregister()
        if self.bridge is not None:
            self.bridge.mark_dead("it was deleted (kill)")

    async def _close(self, delete: bool) -> None:
        opening = self._opening
        if opening is not None and not opening.done() and opening is not asyncio.current_task():
            # A launch given up midway: let it finish learning the kernel's id first.
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(opening), self.config.launch_timeout)
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(BaseException):
                await self._watcher
        if delete:
            try:
                await self.delete()
            except GatewayError as e:
                log.warning("%s: %s", self.label, e)
        if self.bridge is not None:
            self.bridge.mark_dead("the bridge was closed")
            await self.bridge.close()
        if self._http is not None:
            await self._http.aclose()

    def close(self, delete: bool = True, timeout: float = 30) -> None:
        """Delete the remote kernel (unless told not to), close the bridge, end the thread.

        Blocking; safe from any thread but the bridge's own, and more than once.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._on_dead("closed")
        if self.loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._close(delete), self.loop)
            try:
                future.result(timeout)
            except Exception as e:
                log.warning("%s: closing the bridge failed: %s", self.label, e)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)
        self._unregister()
        if self.connection_file:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.connection_file)

    # -- deleted at exit ----------------------------------------------------------------------

    def _register(self) -> None:
        global _atexit_registered
        with _live_lock:
            _live.add(self)
            if not _atexit_registered:
                atexit.register(delete_all)
                _atexit_registered = True

    def _unregister(self) -> None:
        with _live_lock:
            _live.discard(self)


def delete_all() -> None:
    """Delete every remote kernel this process started and has not deleted (runs at exit)."""
    with _live_lock:
        kernels = list(_live)
    for kernel in kernels:
        kernel.close(delete=True, timeout=10)
