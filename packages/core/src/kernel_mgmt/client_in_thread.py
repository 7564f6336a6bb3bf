"""``ClientInThread``: the seed's client running in a thread of its own, with its own loop."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kernel_mgmt.client_base import KernelClient, connection_info_from

__all__ = ["ClientInThread"]

log = logging.getLogger("kernel_mgmt.client")


class ClientInThread(threading.Thread):
    """Run an asyncio client in a separate thread alongside a synchronous application.

    As in the seed: :meth:`start` the thread, then request methods send from the caller's
    thread without waiting and return the request's msg_id; handlers run in the client's
    thread. ``started`` is set once the client exists, ``kernel_responding`` once the kernel
    answered kernel_info.
    """

    allow_stdin = True

    def __init__(
        self,
        connection_info: Mapping[str, Any] | str | os.PathLike[str],
        manager: Any = None,
        loop: Any = None,
    ) -> None:
        super().__init__(name="kernel-mgmt-client-thread", daemon=True)
        self.connection_info = connection_info_from(connection_info)
        self.manager = manager
        self.started = threading.Event()
        self.kernel_responding = threading.Event()
        self.client: KernelClient | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self.client = KernelClient(self.connection_info, manager=self.manager)
        self.started.set()

        async def ready() -> None:
            try:
                await self.client.wait_for_ready()  # type: ignore[union-attr]
            except Exception as e:
                log.warning("kernel did not become ready: %s", e)
            else:
                self.kernel_responding.set()

        ready_task = asyncio.create_task(ready())
        try:
            await self._stop_event.wait()
        finally:
            ready_task.cancel()
            self.client.close()

    def close(self, timeout: float = 10.0) -> None:
        """Close the client and join the thread."""
        if self.loop is not None and self._stop_event is not None and self.is_alive():
            self.loop.call_soon_threadsafe(self._stop_event.set)
            self.join(timeout)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if not self.started.wait(10) or self.loop is None:
            raise RuntimeError("ClientInThread is not running: call start() first")

        async def send() -> Any:
            aw = getattr(self.client, name)(*args, **kwargs)
            return getattr(aw, "jupyter_msg_id", None)

        return asyncio.run_coroutine_threadsafe(send(), self.loop).result(10)

    def add_handler(self, handler: Callable[..., Any], channels: str | Iterable[str]) -> None:
        """Call *handler* for messages on *channels* (in the client's thread)."""
        self._call("add_handler", handler, channels)

    def remove_handler(
        self, handler: Callable[..., Any], channels: str | Iterable[str] | None = None
    ) -> None:
        """Stop calling *handler*."""
        self._call("remove_handler", handler, channels)

    def execute(self, code: str, **kwargs: Any) -> str:
        """Send an execute_request; returns its msg_id."""
        kwargs.setdefault("allow_stdin", self.allow_stdin)
        return self._call("execute", code, **kwargs)

    def complete(self, code: str, cursor_pos: int | None = None) -> str:
        return self._call("complete", code, cursor_pos)

    def inspect(self, code: str, cursor_pos: int | None = None, detail_level: int = 0) -> str:
        return self._call("inspect", code, cursor_pos, detail_level)

    def history(self, raw: bool = True, output: bool = False, **kwargs: Any) -> str:
        return self._call("history", raw, output, **kwargs)

    def kernel_info(self) -> str:
        return self._call("kernel_info")

    def comm_info(self, target_name: str | None = None) -> str:
        return self._call("comm_info", target_name)

    def shutdown(self, restart: bool = False) -> str:
        return self._call("shutdown", restart)

    def is_complete(self, code: str) -> str:
        return self._call("is_complete", code)

    def interrupt(self) -> None:
        """Interrupt the kernel (message or signal, per its interrupt_mode)."""
        if self.loop is None:
            raise RuntimeError("ClientInThread is not running: call start() first")
        asyncio.run_coroutine_threadsafe(self.client.interrupt(), self.loop).result(10)  # type: ignore[union-attr]

    def input(self, string: str, parent: Mapping[str, Any] | None = None) -> None:
        """Answer an input_request."""
        self._call("input", string, parent)
