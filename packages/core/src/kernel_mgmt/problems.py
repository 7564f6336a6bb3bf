"""Problems a provider reports, and how the finder words them.

While the finder runs one of a provider's hooks, the call runs in its own worker thread, which
owns a sink (a list) for the duration of the call: :func:`report_problem` on that thread adds to
it, and the finder lists each message as the provider's :class:`Problem`. No logging handler is
involved, so the application's logging configuration neither changes nor matters.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .providers import _Provider

if TYPE_CHECKING:  # pragma: no cover
    from .hookcalls import _Job
    from .providers import ProviderInfo

__all__ = [
    "LOGGER_NAME",
    "Problem",
    "ProblemReporting",
    "problems_captured",
    "report_note",
    "report_problem",
]

LOGGER_NAME = "kernel_mgmt.discovery"


class Problem:
    """Something wrong with one provider, as reported to users."""

    __slots__ = ("distribution", "message", "provider", "version")

    def __init__(
        self, provider: str, distribution: str | None, version: str | None, message: str
    ) -> None:
        self.provider = provider
        self.distribution = distribution
        self.version = version
        self.message = message

    def __repr__(self) -> str:
        return (
            f"Problem({self.provider!r}, {self.distribution!r}, {self.version!r}, {self.message!r})"
        )

    def __str__(self) -> str:
        dist = _dist_label(self.distribution, self.version)
        return f"provider {self.provider!r} ({dist}): {self.message}"


def _dist_label(name: str | None, version: str | None) -> str:
    if not name:
        return "in-process"
    return f"{name} {version}" if version else name


#: Worker thread id -> the problems reported on it (filled by a hook call, see hookcalls).
_sinks: dict[int, list[str]] = {}
_sinks_lock = threading.Lock()


def report_problem(message: str) -> None:
    """Report a problem of the calling provider, e.g. a skipped file (the message names it).

    Inside a provider hook that a :class:`KernelFinder` runs (importing the provider,
    ``load_config``, ``find_kernels``), it is listed as that provider's problem in
    :attr:`KernelFinder.problems` and ``kernel-mgmt providers`` (and logged once by the
    finder). Elsewhere it is logged as a warning on the ``kernel_mgmt.discovery`` logger.
    Call it from the hook's own thread: a helper thread's reports are only logged.
    """
    sink = _sinks.get(threading.get_ident())
    if sink is not None:
        sink.append(str(message))
        return
    import logging  # deferred: only needed when something is wrong

    logging.getLogger(LOGGER_NAME).warning("%s", message)


class _Note(str):
    """A message passed to :func:`report_note` (kept apart from problems in the sink)."""

    __slots__ = ()


def report_note(message: str) -> None:
    """Say something about the calling provider's state that is not a problem.

    For example "not configured, so no kernel types: set ...". Inside a provider hook a
    :class:`KernelFinder` runs, it becomes :attr:`ProviderInfo.note` (shown as the reason of
    an ``ok`` provider by ``kernel-mgmt providers``); it is neither logged nor listed among
    the problems. Elsewhere it is ignored.
    """
    sink = _sinks.get(threading.get_ident())
    if sink is not None:
        sink.append(_Note(message))


def problems_captured() -> bool:
    """Whether :func:`report_problem` on this thread is recorded as a provider's problem.

    True inside a provider hook that a :class:`KernelFinder` runs. A provider that warns
    about a problem only once per process should report it on every call while this is
    true, so that every finder lists it.
    """
    return threading.get_ident() in _sinks


class ProblemReporting:
    """How the finder records a provider's problems: once per provider and message, each
    logged once on the ``kernel_mgmt.discovery`` logger (a base of the finder)."""

    _lock: threading.Lock
    _reported: set[tuple[str, str]]
    _problems: list[Problem]
    _all: list[_Provider]

    def _report_collected(self, info: ProviderInfo, job: _Job) -> None:
        """Record each problem the provider reported with report_problem() during the job
        (and its latest report_note())."""
        for message in list(job.reported):  # a copy: a timed-out job may still be reporting
            if isinstance(message, _Note):
                info.note = str(message)
            else:
                self._report(info, message)

    def _report(self, info: ProviderInfo, message: str) -> None:
        """Record and log a problem, once per provider and message."""
        with self._lock:
            if message not in info.problems:
                info.problems.append(message)
            key = (info.id, message)
            if key in self._reported:
                return
            self._reported.add(key)
            problem = Problem(info.id, info.distribution, info.version, message)
            self._problems.append(problem)
        import logging  # deferred: only needed when something is wrong

        logging.getLogger(LOGGER_NAME).warning("%s", problem)

    def _fail(self, info: ProviderInfo, message: str) -> None:
        info.status, info.reason = "failed", message
        if not any(p.info is info for p in self._all):
            self._all.append(_Provider(info))
        self._report(info, message)
