"""SIGINT in a wrapper kernel: ``KeyboardInterrupt`` inside ``do_execute`` only, never lost.

:class:`~wrapper_kernel.server.KernelServer` inherits :class:`SigintHandling`: the main
thread's Python-level handler (``_on_sigint``), and the control thread's watch on the signal
wakeup pipe that repeats a SIGINT the main thread has not yet seen (``_check_interrupt``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from .channels import defer_interrupt

__all__ = ["SigintHandling"]


class SigintHandling:
    """The server's SIGINT state and handlers (``interrupt_mode`` ``signal`` and ``message``)."""

    executing: bool
    in_user_code: bool
    interrupt_pending: bool

    def _init_sigint(self) -> None:
        # Signal wakeup pipe (signal.set_wakeup_fd): the C-level SIGINT handler writes a byte
        # here. See _on_sigint and _check_interrupt for why we watch it.
        self._sig_r, self._sig_w = os.pipe()
        os.set_blocking(self._sig_r, False)
        os.set_blocking(self._sig_w, False)
        # Reentrant: a second SIGINT may run the handler again inside the first one.
        self._sig_lock = threading.RLock()
        self._sig_seq = 0  # SIGINT bytes seen by the control thread
        self._handled_seq = 0  # _sig_seq when the Python-level handler last ran
        self._main_ident = threading.main_thread().ident

    def interrupt(self) -> None:
        """Message-mode interrupt: SIGINT to the main thread, which raises in do_execute."""
        if (self.executing or self.in_user_code) and self._main_ident is not None:
            signal.pthread_kill(self._main_ident, signal.SIGINT)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        # Acknowledge: consume the wakeup bytes, so the control thread knows this SIGINT
        # reached Python (see _check_interrupt).
        with self._sig_lock:
            try:
                while os.read(self._sig_r, 512):
                    pass
            except OSError:  # BlockingIOError: drained
                pass
            self._handled_seq = self._sig_seq
        # Only user code is interrupted; an idle kernel (or our own bookkeeping) carries on.
        if self.in_user_code:
            if defer_interrupt(frame):
                return  # raised when the message is whole
            raise KeyboardInterrupt
        if self.executing:
            # The interrupt raced the start of do_execute (a client interrupts as soon as it
            # sees execute_input): deliver it when the author's code starts.
            self.interrupt_pending = True

    # An interrupt must not be lost. CPython runs a Python signal handler only between
    # bytecodes or when a blocking call returns EINTR; a SIGINT that lands after do_execute's
    # `time.sleep` released the GIL but before it entered the syscall (likely when the control
    # thread sends it: it runs exactly when the main thread lets go of the GIL) is noted by
    # the C handler and then waits for the whole sleep. So the control thread watches the
    # wakeup pipe, and while a SIGINT has not reached the Python handler and do_execute runs,
    # repeats it to the main thread every RESIGNAL_INTERVAL.
    RESIGNAL_INTERVAL = 0.02
    RESIGNAL_MAX = 250  # 5 s; the shutdown watchdog covers code that never gets interrupted
    _recheck_at: float | None = None
    _resignals = 0

    def _note_signal(self) -> None:
        with self._sig_lock:
            try:
                data = os.read(self._sig_r, 512)
            except OSError:  # the handler drained it first: delivered
                return
            if signal.SIGINT not in data:
                return
            self._sig_seq += 1
        if self._recheck_at is None:
            self._resignals = 0
            self._recheck_at = time.monotonic() + self.RESIGNAL_INTERVAL

    def _check_interrupt(self) -> None:
        # Check and repeat under the handler's lock: were the handler to run between the two
        # (the interrupt delivered, the execute answered, the next one started), the repeat
        # would interrupt an execute nobody asked to interrupt.
        with self._sig_lock:
            delivered = self._handled_seq >= self._sig_seq
            if delivered or not self.executing or self._resignals >= self.RESIGNAL_MAX:
                self._recheck_at = None
                return
            self._resignals += 1
            if self._main_ident is not None:
                signal.pthread_kill(self._main_ident, signal.SIGINT)
        self._recheck_at = time.monotonic() + self.RESIGNAL_INTERVAL
