"""What a client reports when a kernel cannot be reached or dies: the client's errors.

:class:`KernelDied` fails every pending request of a kernel that exited (or stopped answering
its heartbeat), with its exit code and the tail of its stderr; :class:`ConnectionInfoError`
says what connection info lacks. :func:`describe_exit` and :func:`kernel_label` word them.
"""

from __future__ import annotations

import signal
from typing import Any

__all__ = ["ConnectionInfoError", "KernelDied", "describe_exit", "kernel_label"]


class KernelDied(RuntimeError):
    """The kernel exited (or stopped answering its heartbeat) while we were waiting for it.

    :attr:`returncode` is the exit code when known (negative: killed by that signal) and
    :attr:`stderr` the last lines the kernel wrote to stderr.
    """

    def __init__(self, message: str, returncode: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


def describe_exit(returncode: int | None) -> str:
    """How a process ended, for messages: ``killed by SIGKILL (exit code -9)``, ``exit code 3``.

    POSIX return codes below zero mean "killed by signal -rc" (``subprocess`` convention).
    """
    if returncode is None:
        return ""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name} (exit code {returncode})"
    return f"exit code {returncode}"


def kernel_label(manager: Any) -> str:
    """Name a kernel for messages: ``kernel pyimport/kernel (id 1f0c…)``.

    Uses the manager's ``kernel_type`` (recorded by ``KernelFinder.launch``) and
    ``kernel_id`` when it has them; managers made by hand may have neither.
    """
    kernel_type = getattr(manager, "kernel_type", None) if manager is not None else None
    kernel_id = getattr(manager, "kernel_id", None) if manager is not None else None
    if kernel_type and kernel_id:
        return f"kernel {kernel_type} (id {kernel_id})"
    if kernel_type:
        return f"kernel {kernel_type}"
    if kernel_id:
        return f"the kernel (id {kernel_id})"
    return "the kernel"


class ConnectionInfoError(ValueError):
    """Connection info given to a client lacks what it needs to reach the kernel."""
