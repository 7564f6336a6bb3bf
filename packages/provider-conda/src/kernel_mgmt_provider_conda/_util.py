"""Reporting problems: a provider problem inside a finder's call, else a logged warning."""

from __future__ import annotations

__all__ = ["LOGGER_NAME", "report"]

LOGGER_NAME = "kernel_mgmt_provider_conda"


def report(message: str) -> None:
    """Report a skipped environment, file or kernelspec (the message names it).

    Inside a hook a :class:`~kernel_mgmt.discovery.KernelFinder` runs, it becomes this
    provider's problem (:func:`kernel_mgmt.discovery.report_problem`; the finder logs it);
    elsewhere it is logged as a warning on the ``kernel_mgmt_provider_conda`` logger.
    Both imports are deferred: the package's import stays light, and nothing to report is
    the common case.
    """
    from kernel_mgmt.discovery import problems_captured, report_problem

    if problems_captured():
        report_problem(message)
        return
    import logging

    logging.getLogger(LOGGER_NAME).warning("%s", message)
