"""Reporting problems: one ``logging`` warning per problem and scan, as the spec provider does."""

from __future__ import annotations

import logging

__all__ = ["log", "report"]

log = logging.getLogger("kernel_mgmt_provider_conda")


def report(message: str) -> None:
    """Log a skipped environment, file or kernelspec (the message names it)."""
    log.warning("%s", message)
