"""One :class:`kernel_mgmt.KernelFinder` per installed provider, shared by this process.

The spec manager lists kernels on every ``GET /api/kernelspecs``. A finder for all providers
answers only when the slowest has (or timed out, 10 s by default): one finder per provider
lets the listing take what has answered within :attr:`Finders.wait` seconds and keep the
last answer of a provider still running (whose call goes on, and refreshes it when done).
A listing waits only for the calls it starts: one still running from an earlier listing has
had its wait, so a hanging provider delays one listing, not every one (nor, through the
synchronous ``get_kernel_spec``, the server's event loop again and again).
A failing provider costs its own kernels and nothing else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterable
from typing import Any

from kernel_mgmt.discovery import KernelFinder, scan_entry_points

__all__ = ["Finders", "Listing", "reset_shared", "shared"]

Record = tuple[str, dict[str, Any]]


class Listing:
    """What one listing found: records in provider order, and the providers not in time."""

    def __init__(self, records: list[Record], late: list[str], failed: list[str]) -> None:
        self.records = records
        self.late = late
        self.failed = failed


class _One:
    """One provider's finder, its call in flight and its last answer."""

    def __init__(self, provider_id: str, finder: KernelFinder) -> None:
        self.id = provider_id
        self.finder = finder
        self.future: concurrent.futures.Future[list[Record]] | None = None
        self.last: list[Record] | None = None
        self.lock = threading.Lock()

    def start(
        self, pool: concurrent.futures.Executor
    ) -> tuple[concurrent.futures.Future[list[Record]], bool]:
        """The provider's call: a new one, or the one still running (then ``False``)."""
        with self.lock:
            if self.future is None or self.future.done():
                self.future = pool.submit(self._run)
                return self.future, True
            return self.future, False

    def _run(self) -> list[Record]:
        records = list(self.finder.find_kernels())
        self.last = records
        return records


class Finders:
    """Per-provider finders over the installed entry points (or ``entry_points`` given).

    :param wait: seconds a listing waits for providers before using their last answer.
    """

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        entry_points: Iterable[Any] | None = None,
        wait: float = 2.0,
    ) -> None:
        if config is None:
            from kernel_mgmt.config import load_config

            config = load_config()
        self.config = config
        self.wait = wait
        eps = scan_entry_points() if entry_points is None else list(entry_points)
        by_id: dict[str, list[Any]] = {}
        for ep in eps:
            by_id.setdefault(ep.name, []).append(ep)
        self._ones = {
            pid: _One(pid, KernelFinder.from_entrypoints(config, entry_points=group))
            for pid, group in by_id.items()
        }
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(2, len(self._ones)), thread_name_prefix="kernel-mgmt-jupyter"
        )

    @property
    def provider_ids(self) -> list[str]:
        """Ids of the providers found (loaded or not), in entry-point order."""
        return list(self._ones)

    def finder_for(self, type_id: str) -> KernelFinder:
        """The finder of ``type_id``'s provider (an empty one, whose launch explains, if none)."""
        one = self._ones.get(type_id.partition("/")[0])
        if one is None:
            return KernelFinder((), self.config)  # its launch() names the loaded providers
        return one.finder

    def providers(self) -> list[Any]:
        """Every provider's :class:`kernel_mgmt.discovery.ProviderInfo`, sorted by id."""
        infos = [info for one in self._ones.values() for info in one.finder.providers]
        return sorted(infos, key=lambda i: i.id)

    def problems(self) -> list[Any]:
        """Problems reported by every provider so far."""
        return [p for one in self._ones.values() for p in one.finder.problems]

    def _collect(self, done: set[str]) -> Listing:
        records: list[Record] = []
        late: list[str] = []
        failed: list[str] = []
        for one in self._ones.values():
            future = one.future
            if one.id in done and future is not None and future.done():
                if future.exception() is not None:
                    failed.append(one.id)
                    records.extend(one.last or [])
                else:
                    records.extend(future.result())
            else:
                late.append(one.id)
                records.extend(one.last or [])
        return Listing(records, late, failed)

    def _start_all(self) -> tuple[dict[str, concurrent.futures.Future[list[Record]]], list[Any]]:
        """Every provider's call, and those started now: a listing waits only for these (a
        call still running from an earlier listing has already had its wait)."""
        futures: dict[str, concurrent.futures.Future[list[Record]]] = {}
        fresh = []
        for one in self._ones.values():
            future, new = one.start(self._pool)
            futures[one.id] = future
            if new:
                fresh.append(future)
        return futures, fresh

    def list_sync(self, wait: float | None = None) -> Listing:
        """List every provider's kernels, waiting at most ``wait`` seconds (blocking)."""
        futures, fresh = self._start_all()
        if fresh:
            concurrent.futures.wait(fresh, timeout=self.wait if wait is None else wait)
        return self._collect({pid for pid, f in futures.items() if f.done()})

    async def list_async(self, wait: float | None = None) -> Listing:
        """Like :meth:`list_sync`, awaited without blocking the running event loop."""
        futures, fresh = self._start_all()
        wrapped = [asyncio.wrap_future(f) for f in fresh]
        if wrapped:
            done, pending = await asyncio.wait(wrapped, timeout=self.wait if wait is None else wait)
            for task in pending:
                # The call goes on in its thread and refreshes `last`; nobody awaits it here.
                task.add_done_callback(_consume)
            for task in done:
                _consume(task)
        return self._collect({pid for pid, f in futures.items() if f.done()})

    def close(self) -> None:
        """Stop the worker threads once their calls return (for tests and reloads)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _consume(task: asyncio.Future[Any]) -> None:
    """Mark a task's exception as retrieved (the finder already reported it)."""
    if not task.cancelled():
        task.exception()


_shared: Finders | None = None
_shared_lock = threading.Lock()


def shared() -> Finders:
    """The process's finders, made on first use (the spec manager and provisioner share them)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Finders()
        return _shared


def reset_shared(finders: Finders | None = None) -> None:
    """Replace the process's finders (None: make new ones on next use); for tests."""
    global _shared
    with _shared_lock:
        old, _shared = _shared, finders
    if old is not None and old is not finders:
        old.close()
