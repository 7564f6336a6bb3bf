"""High-level API: start a kernel by type name and get a ready client, in one call.

::

    async with run_kernel_async("pyimport/kernel") as kc:
        await kc.execute("a = 6 * 7")

    with run_kernel_blocking("pyimport/kernel") as kc:
        kc.execute_interactive("print(6 * 7)")

Leaving either context shuts the kernel down (``shutdown_request``, then SIGTERM, then
SIGKILL) and removes its connection file, whether or not the kernel is still alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from kernel_mgmt.client import BlockingKernelClient, KernelClient, LoopThread


def _finder(finder: Any) -> Any:
    if finder is not None:
        return finder
    from kernel_mgmt.discovery import KernelFinder

    return KernelFinder.from_entrypoints()


async def _dispose(manager: Any) -> None:
    """Kill and clean up a kernel whose client never came up."""
    with contextlib.suppress(Exception):
        await manager.kill()
    with contextlib.suppress(Exception):
        await manager.cleanup()


async def start_kernel_async(
    name: str,
    cwd: str | None = None,
    launch_params: dict[str, Any] | None = None,
    finder: Any = None,
    startup_timeout: float | None = 60,
) -> tuple[Any, KernelClient]:
    """Start a kernel by kernel type name; return ``(manager, async client)`` once ready.

    Raises :class:`~kernel_mgmt.client_base.KernelDied` (with the kernel's exit code and
    stderr) if it exits during startup, TimeoutError after *startup_timeout* seconds; in
    both cases nothing is left running.
    """
    kf = _finder(finder)
    deadline = None if startup_timeout is None else time.monotonic() + startup_timeout
    try:
        conn_info, km = await asyncio.wait_for(
            kf.launch(name, cwd=cwd, launch_params=launch_params), startup_timeout
        )
    except TimeoutError:
        raise TimeoutError(f"launching {name} took more than {startup_timeout} s") from None
    try:
        kc = KernelClient(conn_info, manager=km)
    except BaseException:
        await _dispose(km)
        raise
    try:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        await kc.wait_for_ready(timeout=left)
    except BaseException:
        # Never ready, so a shutdown_request would go unanswered: kill it straight away.
        await _dispose(km)
        kc.close()
        raise
    return km, kc


class run_kernel_async:  # lower-case: the seed's public name
    """Async context manager running a kernel by type name; gives a ready async client::

        async with run_kernel_async("pyimport/kernel") as kc:
            await kc.execute("a = 6 * 7")

    Keyword arguments are those of :func:`start_kernel_async`.
    """

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.name = name
        self.kwargs = kwargs
        self.km: Any = None
        self.kc: KernelClient | None = None

    async def __aenter__(self) -> KernelClient:
        self.km, self.kc = await start_kernel_async(self.name, **self.kwargs)
        return self.kc

    async def __aexit__(self, *exc: object) -> None:
        assert self.kc is not None
        try:
            await self.kc.shutdown_or_terminate()
        finally:
            await _dispose(self.km)
            self.kc.close()


def start_kernel_blocking(
    name: str,
    *,
    cwd: str | None = None,
    launch_params: dict[str, Any] | None = None,
    finder: Any = None,
    startup_timeout: float = 60,
) -> tuple[Any, BlockingKernelClient]:
    """Start a kernel by kernel type name; return ``(manager, blocking client)`` once ready.

    The manager's coroutines belong to the client's private event loop: drive them with
    ``asyncio.run_coroutine_threadsafe(coro, kc.loop)``, or use the client's methods.
    """
    kf = _finder(finder)
    thread = LoopThread()
    try:
        conn_info, km = thread.run(
            kf.launch(name, cwd=cwd, launch_params=launch_params), startup_timeout, "launch"
        )
    except BaseException:
        thread.stop()
        raise
    try:
        kc = BlockingKernelClient(conn_info, manager=km, _loop_thread=thread)
    except BaseException:
        if thread.alive:
            thread.run(_dispose(km), 15, "kill")
        thread.stop()
        raise
    try:
        kc.wait_for_ready(timeout=startup_timeout)
    except BaseException:
        # Never ready, so a shutdown_request would go unanswered: kill it straight away.
        with contextlib.suppress(Exception):
            thread.run(_dispose(km), 15, "kill")
        kc.close()
        raise
    return km, kc


class run_kernel_blocking:  # lower-case: the seed's public name
    """Context manager running a kernel by type name; gives a ready blocking client::

        with run_kernel_blocking("pyimport/kernel") as kc:
            kc.execute_interactive("print(6 * 7)")

    Keyword arguments are those of :func:`start_kernel_blocking`. The seed's chapter 8.1.1
    example writes ``async with run_kernel_blocking(...)``: that works too and, as the
    example needs, gives the async client (it is :class:`run_kernel_async` then).
    """

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.name = name
        self.kwargs = kwargs
        self.km: Any = None
        self.kc: BlockingKernelClient | None = None
        self._async: run_kernel_async | None = None

    def __enter__(self) -> BlockingKernelClient:
        self.km, self.kc = start_kernel_blocking(self.name, **self.kwargs)
        return self.kc

    def __exit__(self, *exc: object) -> None:
        kc = self.kc
        assert kc is not None
        try:
            kc.shutdown_or_terminate()
        finally:
            with contextlib.suppress(Exception):
                kc._thread.run(_dispose(self.km), 15, "kill")
            kc.close()

    async def __aenter__(self) -> KernelClient:
        self._async = run_kernel_async(self.name, **self.kwargs)
        return await self._async.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        assert self._async is not None
        await self._async.__aexit__(*exc)
