"""Calling provider code under a timeout, so that a hung provider cannot hang the caller.

Each call (importing a provider, ``load_config``, ``find_kernels``) runs in its own daemon
thread (:class:`_Job`) that owns the problem sink of :mod:`kernel_mgmt.problems` while it
runs; the caller waits up to the provider's timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .problems import _sinks, _sinks_lock
from .records import check_record

if TYPE_CHECKING:  # pragma: no cover
    from .providers import ProviderInfo, _Provider

__all__ = ["FindCalls", "ProviderTimeout", "call_impl", "collect_records"]


class ProviderTimeout(TimeoutError):
    """A provider's hook call did not return within the timeout."""


class _Job:
    """Run ``fn`` in a daemon thread so that a hung provider cannot hang the caller."""

    __slots__ = ("_done", "_error", "_value", "lock", "processed", "reported", "started", "thread")

    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        self.started = time.monotonic()
        # For find jobs shared by concurrent callers: the first one validates the records.
        self.lock = threading.Lock()
        self.processed: list[tuple[str, dict[str, Any]]] | None = None
        #: Messages the provider passed to report_problem() on the job's thread.
        self.reported: list[str] = []
        # daemon: a provider stuck forever must not keep the interpreter from exiting
        self.thread = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        ident = threading.get_ident()
        with _sinks_lock:
            _sinks[ident] = self.reported
        try:
            self._value = fn()
        except BaseException as e:
            self._error = e
        finally:
            with _sinks_lock:
                _sinks.pop(ident, None)
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float) -> Any:
        if not self._done.wait(max(timeout, 0.0)):
            raise ProviderTimeout
        if self._error is not None:
            raise self._error
        return self._value


def collect_records(result: Any) -> list[Any]:
    """Turn whatever ``find_kernels`` returned into a list (runs in the worker thread)."""
    if result is None:
        return []
    if hasattr(result, "__anext__"):  # async generator: drain it in a private loop
        import asyncio

        async def drain() -> list[Any]:
            return [item async for item in result]

        return asyncio.run(drain())
    if hasattr(result, "__await__"):  # coroutine returning an iterable
        import asyncio

        async def wait() -> Any:
            return await result

        result = asyncio.run(wait())
        if result is None:
            return []
    return list(result)


def call_impl(impl: Any, **kwargs: Any) -> Any:
    """Call a hookimpl with the subset of arguments it declares (pluggy's convention)."""
    accepted = set(impl.argnames) | set(impl.kwargnames)
    return impl.function(**{k: v for k, v in kwargs.items() if k in accepted})


class FindCalls:
    """The finder's ``find_kernels`` calls: one job per provider, shared by concurrent callers
    (listings and cold launches) until its deadline; its records checked once (a base of the
    finder)."""

    _lock: threading.Lock
    timeout_for: Callable[[str], float]
    _report: Callable[[ProviderInfo, str], None]
    _report_collected: Callable[[ProviderInfo, _Job], None]

    def _start_find(self, provider: _Provider) -> _Job | None:
        """Start the provider's find_kernels, or join the call already in flight."""
        with self._lock:
            job = provider.busy
            if job is not None and not job.done():
                if time.monotonic() - job.started < self.timeout_for(provider.id):
                    return job  # concurrent finds and cold launches share one call
                stuck = True
            else:
                stuck = False
                impl = provider.impls["find_kernels"]
                job = _Job(
                    lambda: collect_records(call_impl(impl)), f"kernel_mgmt-find-{provider.id}"
                )
                provider.busy = job
        if stuck:
            provider.info.status = "failed"
            self._report(
                provider.info,
                "find_kernels is still running from an earlier call (it exceeded the timeout)",
            )
            return None
        return job

    def _finish_find(self, provider: _Provider, job: _Job) -> list[tuple[str, dict[str, Any]]]:
        """Wait (until the job's deadline) for a find job, then validate its records once."""
        with job.lock:
            if job.processed is None:
                job.processed = self._process_find(provider, job)
            return job.processed

    def _process_find(self, provider: _Provider, job: _Job) -> list[tuple[str, dict[str, Any]]]:
        provider.info.note = ""  # each listing says it anew
        try:
            return self._check_find(provider, job)
        finally:
            self._report_collected(provider.info, job)

    def _check_find(self, provider: _Provider, job: _Job) -> list[tuple[str, dict[str, Any]]]:
        info = provider.info
        timeout = self.timeout_for(provider.id)
        try:
            records = job.result(job.started + timeout - time.monotonic())
        except ProviderTimeout:
            info.status = "failed"
            info.reason = f"find_kernels took longer than {timeout:g} s"
            self._report(info, info.reason)
            return []
        except (Exception, SystemExit) as e:  # sys.exit() in a provider must not end the app
            info.status = "failed"
            info.reason = f"find_kernels raised {type(e).__name__}: {e}"
            self._report(info, info.reason)
            return []
        info.status, info.reason = "ok", ""
        good: dict[str, dict[str, Any]] = {}
        for record in records:
            checked = check_record(record, good, lambda message: self._report(info, message))
            if checked is not None:
                good[checked[0]] = checked[1]
        provider.kernels = good
        info.kernels = len(good)
        return list(good.items())
