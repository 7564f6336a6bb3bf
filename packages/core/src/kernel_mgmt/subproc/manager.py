"""Manage a kernel running as a local subprocess.

Everything here is loop-agnostic: the process is a plain :class:`subprocess.Popen`,
liveness comes from ``Popen.poll()`` and waiting uses a pidfd watched by whichever
event loop awaits (polling with back-off where pidfds are unavailable). No asyncio
child watcher is involved, so a manager created in one loop can be driven from
another — the blocking client runs its own loop in a thread.

The kernel runs in its own session (``start_new_session``), so its process id is
also its process-group id; signals go to the whole group, reaching the kernel's
children too (a shell command, a ``multiprocessing`` pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal as _signal
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import IO, Any

from kernel_mgmt.connection import PORT_NAMES, new_uuid, pid_alive, release_ports
from kernel_mgmt.managerabc import KernelManagerABC

from .stderr_tail import STDERR_TAIL_LINES as STDERR_TAIL_LINES  # re-exported
from .stderr_tail import StderrTail


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class InterruptModeError(RuntimeError):
    """``interrupt()`` was called on a kernel that wants interrupts as messages."""


class _AsyncioProcess:
    """An :class:`asyncio.subprocess.Process` seen through the Popen calls used here.

    The seed accepts one as ``popen``. Its event loop's child watcher reaps it and records
    the exit code, which ``poll()`` reads (it never waits itself).
    """

    stderr = None  # an asyncio StreamReader, if any, belongs to the loop that made it

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.pid = process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def poll(self) -> int | None:
        return self.process.returncode

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)


class KernelManager(KernelManagerABC):
    """Manages a single kernel in a subprocess on this host.

    :param popen: the started kernel (a :class:`subprocess.Popen`, ideally started with
        ``start_new_session=True``; if its ``stderr`` is a pipe it is drained here), or an
        :class:`asyncio.subprocess.Process` (as the seed allows; its loop must keep running).
    :param files_to_cleanup: files and directories (connection file, ipc sockets and
        their private directory) removed by :meth:`cleanup`.
    :param win_interrupt_evt: accepted for the seed's signature; unused (on Windows,
        :meth:`interrupt` sends CTRL_C_EVENT to the kernel's process group).
    :param kernel_id: the application's id for this kernel (a new uuid by default).
    :param interrupt_mode: ``"signal"`` or ``"message"`` (see :meth:`interrupt`).
    :param connection_info: the kernel's connection info, kept for reference.
    """

    def __init__(
        self,
        popen: subprocess.Popen[Any] | asyncio.subprocess.Process,
        files_to_cleanup: Iterable[str] | None = None,
        win_interrupt_evt: Any = None,
        *,
        kernel_id: str | None = None,
        interrupt_mode: str = "signal",
        connection_info: dict[str, Any] | None = None,
        connection_file: str | None = None,
        stderr_sink: IO[str] | None = None,
    ) -> None:
        if interrupt_mode not in ("signal", "message"):
            raise ValueError(
                f"interrupt_mode must be 'signal' or 'message', not {interrupt_mode!r}"
            )
        if isinstance(popen, asyncio.subprocess.Process):
            popen = _AsyncioProcess(popen)  # type: ignore[assignment]
        elif not hasattr(popen, "poll"):
            raise TypeError(
                f"KernelManager needs a subprocess.Popen or an asyncio.subprocess.Process, "
                f"not {type(popen).__name__}"
            )
        self.popen: Any = popen
        self.win_interrupt_evt = win_interrupt_evt
        self.pid: int = popen.pid
        self.files_to_cleanup = list(files_to_cleanup or ())
        self.kernel_id = kernel_id or new_uuid()
        self.interrupt_mode = interrupt_mode
        self.connection_info = connection_info
        self.connection_file = connection_file
        #: How the kernel was launched (recorded by ``KernelFinder.launch``); a restarter
        #: relaunches the same type in the same folder with the same parameters.
        self.kernel_type: str | None = None
        self.cwd: str | None = None
        self.launch_params: dict[str, Any] | None = None
        #: Set by kill()/terminate() and by a client's shutdown_request: the coming exit
        #: is wanted, so a restarter does not relaunch the kernel (see KernelManagerABC).
        self.shutdown_requested = False
        # start_new_session makes the kernel a session and group leader: pgid == pid.
        # Remember it now; after the kernel is reaped getpgid() would fail.
        try:
            self._pgid: int | None = os.getpgid(popen.pid) if hasattr(os, "getpgid") else None
        except OSError:
            self._pgid = None
        if self._pgid is not None and self._pgid != popen.pid:
            # Not our own group leader (popen made without start_new_session): never
            # signal the group, it is the caller's group too.
            self._pgid = None
        self._stderr: StderrTail | None = None
        if popen.stderr is not None:
            self._stderr = StderrTail(popen.stderr, sink=stderr_sink)
        self._ports_released = False

    def __repr__(self) -> str:
        state = "running" if self.popen.returncode is None else f"exited {self.popen.returncode}"
        return f"<KernelManager {self.kernel_id} pid={self.pid} {state}>"

    # -- state -----------------------------------------------------------------------
    @property
    def returncode(self) -> int | None:
        """The kernel's exit code (negative: killed by that signal), None while running."""
        return self.popen.poll()

    def stderr_tail(self) -> str:
        """The last lines the kernel wrote to stderr (empty if not captured).

        Once the kernel has exited this first lets the drain catch up (briefly: children
        may keep the pipe open), so a death report includes the kernel's last words.
        """
        if self._stderr is None:
            return ""
        if self.popen.poll() is not None and not self._stderr.done.is_set():
            self._stderr.join(0.05)
        return self._stderr.text()

    async def is_alive(self) -> bool:
        """Is the kernel process still running?"""
        return self.popen.poll() is None

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait up to *timeout* seconds for exit; return True if still alive (like is_alive)."""
        if self.popen.poll() is not None:
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        pidfd = None
        # An asyncio process is reaped by its loop's watcher, maybe before we open a pidfd
        # (whose pid could then be someone else's): it is only polled.
        if hasattr(os, "pidfd_open") and not isinstance(self.popen, _AsyncioProcess):
            with contextlib.suppress(OSError):
                pidfd = os.pidfd_open(self.pid)
        if pidfd is not None:
            try:
                # A pidfd becomes readable when the process exits: an event, not a poll.
                loop = asyncio.get_running_loop()
                exited = loop.create_future()
                try:
                    loop.add_reader(pidfd, lambda: exited.done() or exited.set_result(None))
                except (NotImplementedError, RuntimeError):
                    pass  # this loop cannot watch fds: poll below
                else:
                    try:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(exited, _remaining(deadline))
                    finally:
                        loop.remove_reader(pidfd)
            finally:
                os.close(pidfd)
        delay = 0.001
        while self.popen.poll() is None:  # poll() reaps an exited Popen
            if deadline is not None and time.monotonic() >= deadline:
                return True
            left = _remaining(deadline)
            await asyncio.sleep(delay if left is None else min(delay, left))
            delay = min(delay * 2, 0.05)
        return False

    # -- signals ---------------------------------------------------------------------
    def _signal_group(self, signum: int) -> None:
        """Send *signum* to the kernel's process group; quiet if nothing is left."""
        alive = self.popen.poll() is None
        if self._pgid is not None and hasattr(os, "killpg"):
            if not alive and pid_alive(self.pid):
                # The kernel has been reaped, so a process with its pid is someone else
                # (the pid was reused), perhaps leading a new group of that number.
                return
            try:
                # Even after the kernel itself exited, children it left in its group
                # are still signalled: the kernel does not reuse a pid while it is
                # still a live pgid, so that group can only be the kernel's.
                os.killpg(self._pgid, signum)
            except ProcessLookupError:
                pass  # group empty: the kernel and all its children have exited
            except PermissionError:
                if alive:
                    raise
            return
        if alive:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signum)

    async def signal(self, signum: int) -> None:
        """Send *signum* to the kernel's whole process group (kernel and its children)."""
        self._signal_group(signum)

    async def interrupt(self) -> None:
        """Interrupt the kernel: SIGINT to its process group (``interrupt_mode="signal"``).

        A kernel with ``interrupt_mode="message"`` asked not to get signals (a SIGINT
        may kill it), so this raises :class:`InterruptModeError`; send
        ``interrupt_request`` on the control channel instead, which is what
        ``KernelClient.interrupt()`` does for such kernels.
        """
        if self.interrupt_mode == "message":
            raise InterruptModeError(
                f"kernel {self.kernel_id} uses interrupt_mode 'message': interrupt it with "
                "KernelClient.interrupt() (interrupt_request on the control channel), "
                "not with a signal"
            )
        if sys.platform == "win32":  # pragma: no cover - no process groups to signal
            self.popen.send_signal(_signal.CTRL_C_EVENT)  # type: ignore[attr-defined]
            return
        self._signal_group(_signal.SIGINT)

    async def terminate(self) -> None:
        """Ask the kernel to exit: SIGTERM to its process group. Quiet if already gone."""
        self.shutdown_requested = True
        self._signal_group(_signal.SIGTERM)

    async def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL the kernel's process group and wait (up to *timeout*) until it is reaped.

        Calling it on a kernel that has already exited is a no-op (apart from killing
        children the kernel left behind in its group). Sets ``shutdown_requested``, so a
        restarter watching this kernel stops rather than relaunching it.
        """
        self.shutdown_requested = True
        self._signal_group(getattr(_signal, "SIGKILL", _signal.SIGTERM))
        await self.wait(timeout)

    # -- resources -------------------------------------------------------------------
    async def cleanup(self) -> None:
        """Remove the connection file, ipc sockets and their private directory.

        Safe to call more than once. A connection file that now holds a different key
        belongs to a newer kernel started under the same kernel_id (a restart) and is
        left alone. Ports reserved for this kernel are released once it has exited.
        """
        for path in self.files_to_cleanup:
            if path == self.connection_file and not self._owns_connection_file():
                continue
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError:
                continue
        info = self.connection_info
        if not self._ports_released and info is not None and self.popen.poll() is not None:
            self._ports_released = True
            if info.get("transport", "tcp") == "tcp":
                release_ports([info[n] for n in PORT_NAMES if info.get(n)])

    def _owns_connection_file(self) -> bool:
        if self.connection_info is None or self.connection_file is None:
            return True
        try:
            with open(self.connection_file, encoding="utf-8") as f:
                return json.load(f).get("key") == self.connection_info.get("key")
        except (OSError, ValueError, AttributeError):
            return True  # missing or unreadable: removing it (if present) is right
