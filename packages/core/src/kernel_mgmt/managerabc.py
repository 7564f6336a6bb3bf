"""The interface every provider's kernel manager implements.

A kernel manager controls a running kernel's lifetime (alive? wait, signal, interrupt,
kill, clean up); it does not talk the Jupyter protocol — that is the client's job.
Providers that start local processes use :class:`kernel_mgmt.subproc.manager.KernelManager`;
others (containers, remote hosts) subclass this ABC.
"""

from __future__ import annotations

import abc


class KernelManagerABC(abc.ABC):
    """Abstract base class from which all kernel managers are derived."""

    #: The id associated with the kernel (the application may choose it at launch).
    kernel_id: str = ""
    #: ``"signal"`` (interrupt via :meth:`interrupt`) or ``"message"`` (the client sends
    #: ``interrupt_request`` on the control channel, protocol 5.3 "Kernel interrupt").
    interrupt_mode: str = "signal"
    #: True once the kernel was asked to go on purpose (a ``shutdown_request`` without
    #: ``restart``, :meth:`kill`, a terminate): its exit is then not a death, and a
    #: restarter watching it stops instead of relaunching it. Managers should set it in
    #: :meth:`kill` (clients set it when they send the shutdown_request); restarters read
    #: it with ``getattr(manager, "shutdown_requested", False)`` for managers without it.
    shutdown_requested: bool = False

    @abc.abstractmethod
    async def is_alive(self) -> bool:
        """Return True while the kernel is running (e.g. its process exists)."""

    @abc.abstractmethod
    async def wait(self, timeout: float | None = None) -> bool:
        """Wait up to *timeout* seconds (None: forever) for the kernel to exit.

        Returns True if the kernel is still alive afterwards, False if it exited
        (the same value :meth:`is_alive` would return).
        """

    @abc.abstractmethod
    async def signal(self, signum: int) -> None:
        """Send signal *signum* to the kernel."""

    @abc.abstractmethod
    async def interrupt(self) -> None:
        """Interrupt the kernel by a signal or similar out-of-band event.

        Kernels whose ``interrupt_mode`` is ``"message"`` are interrupted by the
        client sending ``interrupt_request``; managers are not expected to do that.
        """

    @abc.abstractmethod
    async def kill(self) -> None:
        """Forcibly terminate the kernel; quiet if it has already exited.

        Sets :attr:`shutdown_requested` first: a kill is not a death to recover from.
        Working kernels should be shut down with ``shutdown_request`` from a client
        first; this is for kernels that will not go.
        """

    async def cleanup(self) -> None:  # noqa: B027 - optional hook with a default
        """Release resources (connection files, sockets) once the kernel is gone."""
