"""Watch a kernel and start it again when it dies.

:class:`AsyncKernelRestarter` notices a death as it happens (it awaits the manager's
``wait()``, with a periodic ``poll()`` every ``time_to_dead`` seconds as a backstop) and
relaunches the same kernel type, with the same working directory and launch parameters,
under the same kernel id, and (for the subprocess launchers) on the same ports with the same
key, so that clients connected to the old kernel go on working with the new one. Callbacks get
the new connection info and manager, for clients that must reconnect (fresh ports, because one
was taken meanwhile, or other launchers)::

    restarter = AsyncKernelRestarter(manager, "pyimport/kernel", finder)
    restarter.add_callback(on_restart, "restarted")   # on_restart({"connection_info": ...})
    restarter.start()

A kernel shut down on purpose is not a death: once its manager's ``shutdown_requested`` is
set (by ``kill()``, ``terminate()``, or a client's ``shutdown_request`` without ``restart``)
and the kernel has exited, the restarter stops without firing any event.

Events: ``died`` (the kernel exited), ``restarted`` (a new kernel was launched — not yet
known to be usable), ``failed`` (``restart_limit`` restarts in a row died quickly or could
not launch; the restarter stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

from kernel_mgmt.connection import reusing_connection

log = logging.getLogger("kernel_mgmt.restarter")

EVENTS = ("died", "restarted", "failed")


class KernelRestarterBase:
    """Monitor and auto-restart a kernel; subclasses provide the scheduling (start/stop).

    :param kernel_manager: the running kernel's manager.
    :param kernel_type: the kernel type name to relaunch (e.g. ``"spec/python3"``).
    :param kernel_finder: the finder to relaunch with (default: from entry points).
    :param cwd: working directory for relaunches (default: the manager's ``cwd``, which
        ``KernelFinder.launch`` records).
    :param launch_params: launch parameters for relaunches (default: the manager's,
        also recorded by ``KernelFinder.launch``).
    :param time_to_dead: seconds between backstop polls of the kernel.
    :param restart_limit: consecutive quick restarts before giving up ('failed').
    :param stable_time: a restarted kernel that lives this long resets the count.
    :param debug: log every poll.
    :param reuse_connection: relaunch on the old kernel's ports and key (default True).
    """

    debug: bool = False
    #: Relaunch with the old kernel's ports, key and Curve keys (see
    #: :func:`kernel_mgmt.connection.reusing_connection`), so that clients connected to it
    #: go on working with the new kernel; fresh ports when one was taken meanwhile.
    reuse_connection: bool = True
    time_to_dead: float = 1.0
    restart_limit: int = 5
    stable_time: float = 10.0

    def __init__(
        self,
        kernel_manager: Any,
        kernel_type: str,
        kernel_finder: Any = None,
        *,
        cwd: str | None = None,
        launch_params: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        for name, value in kw.items():
            if name not in (
                "debug",
                "time_to_dead",
                "restart_limit",
                "stable_time",
                "reuse_connection",
            ):
                raise TypeError(f"unexpected keyword argument {name!r}")
            setattr(self, name, value)
        self.kernel_manager = kernel_manager
        self.kernel_type = kernel_type
        if kernel_finder is None:
            from kernel_mgmt.discovery import KernelFinder

            kernel_finder = KernelFinder.from_entrypoints()
        self.kernel_finder = kernel_finder
        self.cwd = cwd if cwd is not None else getattr(kernel_manager, "cwd", None)
        self.launch_params = (
            launch_params
            if launch_params is not None
            else getattr(kernel_manager, "launch_params", None)
        )
        self.kernel_id: str | None = getattr(kernel_manager, "kernel_id", None) or None
        self.callbacks: dict[str, list[Callable[..., Any]]] = {e: [] for e in EVENTS}
        self._restart_count = 0
        self._restarted_at: float | None = None
        self._in_restart = False
        self._restart_done = asyncio.Event()

    def start(self) -> None:
        """Start monitoring the kernel."""
        raise NotImplementedError("implemented by a subclass")

    def stop(self) -> None:
        """Stop monitoring."""
        raise NotImplementedError("implemented by a subclass")

    def add_callback(self, f: Callable[..., Any], event: str) -> None:
        """Call *f(data)* on *event*: 'died', 'restarted' or 'failed'.

        ``died`` data: ``manager``, ``returncode``, ``kernel_id``; ``restarted``: ``auto``,
        ``connection_info``, ``manager``, ``kernel_id``; ``failed``: ``restart_count``,
        ``error``. *f* may be a coroutine function.
        """
        if event not in self.callbacks:
            raise ValueError(f"unknown event {event!r}; use one of {', '.join(EVENTS)}")
        self.callbacks[event].append(f)

    def remove_callback(self, f: Callable[..., Any], event: str) -> None:
        """Unregister *f* from *event* (quiet if it was not registered)."""
        with contextlib.suppress(KeyError, ValueError):
            self.callbacks[event].remove(f)

    async def _fire_callbacks(self, event: str, data: dict[str, Any]) -> None:
        for callback in list(self.callbacks[event]):
            try:
                result = callback(data)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("restarter: %s callback %r failed", event, callback)

    async def _launch(self) -> tuple[dict[str, Any], Any]:
        """Launch the kernel type again, under the same kernel id when the finder allows."""
        launch = self.kernel_finder.launch
        kwargs: dict[str, Any] = {"cwd": self.cwd, "launch_params": self.launch_params}
        with contextlib.suppress(TypeError, ValueError):
            params = inspect.signature(launch).parameters
            if self.kernel_id and (
                "kernel_id" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
            ):
                kwargs["kernel_id"] = self.kernel_id
        conn_info, manager = await launch(self.kernel_type, **kwargs)
        if self.kernel_id:
            # Keep the application's id for the kernel across restarts (its URLs, its
            # sessions); providers that cannot take it at launch get it set here.
            with contextlib.suppress(AttributeError):
                manager.kernel_id = self.kernel_id
        return conn_info, manager

    async def do_restart(self, auto: bool = False) -> bool:
        """Replace the kernel with a new one of the same type; True if one was launched.

        Called on a death (``auto=True``) or by the application for a manual restart (the
        current kernel is killed first). Restarts whose kernel dies within ``stable_time`` are
        counted; once ``restart_limit`` of them failed in a row, 'failed' fires and the
        restarter stops.
        """
        now = time.monotonic()
        if not (
            auto and self._restarted_at is not None and now - self._restarted_at < self.stable_time
        ):
            self._restart_count = 0  # first death, a long-lived kernel, or a manual restart
        self._in_restart = True
        self._restart_done.clear()
        try:
            old = self.kernel_manager
            previous = getattr(old, "connection_info", None) if self.reuse_connection else None
            if not auto:
                with contextlib.suppress(Exception):
                    await old.kill()
            with contextlib.suppress(Exception):
                await old.cleanup()
            error: BaseException | None = None
            while self._restart_count < self.restart_limit:
                self._restart_count += 1
                log.info(
                    "restarter: starting %s again (%d/%d)",
                    self.kernel_type,
                    self._restart_count,
                    self.restart_limit,
                )
                try:
                    # The old kernel has exited and released its ports: the new one keeps
                    # them and the key (when free), so connected clients go on working.
                    with reusing_connection(previous if isinstance(previous, dict) else None):
                        conn_info, manager = await self._launch()
                except Exception as e:  # a failed launch counts as a failed restart
                    log.warning("restarter: relaunch of %s failed: %s", self.kernel_type, e)
                    error = e
                    continue
                self.kernel_manager = manager
                self._restarted_at = time.monotonic()
                await self._fire_callbacks(
                    "restarted",
                    {
                        "auto": auto,
                        "connection_info": conn_info,
                        "manager": manager,
                        "kernel_id": getattr(manager, "kernel_id", self.kernel_id),
                    },
                )
                return True
        finally:
            self._in_restart = False
            self._restart_done.set()
        log.warning("restarter: %s keeps dying; giving up", self.kernel_type)
        await self._fire_callbacks("failed", {"restart_count": self._restart_count, "error": error})
        self.stop()
        return False

    async def poll(self) -> None:
        """Check the kernel once; on a death fire 'died' and restart it.

        A kernel that exited after its shutdown was requested (the manager's
        ``shutdown_requested``) did not die: the restarter stops instead.
        """
        if self.debug:
            log.debug("restarter: polling %s", self.kernel_type)
        if self._in_restart:
            return  # a restart is under way; its new manager is watched afterwards
        mgr = self.kernel_manager
        if await mgr.is_alive():
            if (
                self._restarted_at is not None
                and time.monotonic() - self._restarted_at >= self.stable_time
            ):
                self._restart_count = 0  # lived long enough: the restart worked
            return
        if getattr(mgr, "shutdown_requested", False):
            # Shut down on purpose (as jupyter_client, where shutting a kernel down stops
            # its restarter): relaunching would start a kernel nobody owns.
            log.debug("restarter: %s was shut down; stopping", self.kernel_type)
            self.stop()
            return
        # Claim this death before anything can yield (async 'died' callbacks): a second
        # poll meanwhile (the application's, or the watch's) must not restart it again.
        self._in_restart = True
        self._restart_done.clear()
        try:
            await self._fire_callbacks(
                "died",
                {
                    "manager": mgr,
                    "returncode": getattr(mgr, "returncode", None),
                    "kernel_id": self.kernel_id,
                },
            )
        except BaseException:
            self._in_restart = False
            self._restart_done.set()
            raise
        await self.do_restart(auto=True)


class AsyncKernelRestarter(KernelRestarterBase):
    """Monitor a kernel from the running asyncio event loop."""

    _task: asyncio.Task[Any] | None = None

    def start(self) -> None:
        """Start monitoring (call from the event loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watch())

    def stop(self) -> None:
        """Stop monitoring."""
        task, self._task = self._task, None
        if task is not None and task is not _current_task():
            task.cancel()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _watch(self) -> None:
        while self._task is not None:
            if self._in_restart:
                # A restart runs elsewhere (do_restart called by the application): the old
                # manager is dead, so waiting on it would spin. Resume with the new one.
                await self._restart_done.wait()
                continue
            mgr = self.kernel_manager
            try:
                # Event-driven: wait() returns as soon as the process exits; the timeout
                # makes it a periodic poll too (stability bookkeeping, odd managers).
                await mgr.wait(self.time_to_dead)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(self.time_to_dead)
            if self._task is None:
                return
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("restarter: poll failed")
                await asyncio.sleep(self.time_to_dead)


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


#: The seed's tornado restarter's names, now on asyncio.
TornadoKernelRestarter = AsyncKernelRestarter
IOLoopKernelRestarter = AsyncKernelRestarter
