"""``kernel-mgmt-jupyter``: sync kernelspec folders, show whether the bridge is active."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kernel-mgmt-jupyter`` command."""
    print("kernel-mgmt-jupyter: not yet", file=sys.stderr)
    return 2
