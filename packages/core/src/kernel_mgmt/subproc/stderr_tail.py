"""The kernel's stderr: passed through to ours, and its last lines kept for error messages.

A kernel that dies during start-up is reported with its exit code and the tail of what it
wrote to stderr (:class:`StderrTail`); ``_StderrPump`` reads the pipe in a daemon thread,
decoding incrementally, and forwards every line.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import os
import selectors
import sys
import threading
from typing import IO

__all__ = ["STDERR_TAIL_LINES", "StderrTail"]

#: Lines of the kernel's stderr kept for error messages.
STDERR_TAIL_LINES = 50


class StderrTail:
    """A kernel's stderr pipe, drained: forwarded to the user and its tail kept.

    Output goes on to *sink* as it arrives (our ``sys.stderr`` at the time of writing,
    so the user still sees the kernel's tracebacks) and the last *maxlen* lines are
    kept for launch-failure messages. The pipe is always drained, so a chatty
    long-running kernel never blocks on a full pipe. Draining ends at EOF, i.e. when
    the kernel and every child that inherited its stderr have exited.
    """

    def __init__(
        self, stream: IO[bytes], sink: IO[str] | None = None, maxlen: int = STDERR_TAIL_LINES
    ) -> None:
        self._stream = stream
        self.fd = stream.fileno()
        self._sink = sink
        self._lines: collections.deque[str] = collections.deque(maxlen=maxlen)
        self._partial = b""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lock = threading.Lock()
        self.done = threading.Event()
        os.set_blocking(self.fd, False)
        _StderrPump.instance().add(self)

    def _forward(self, text: str) -> None:
        if not text:
            return
        sink = self._sink if self._sink is not None else sys.stderr
        # The sink may be closed or replaced (interpreter shutdown, test capture):
        # losing forwarded output is better than stopping the drain.
        with contextlib.suppress(Exception):
            sink.write(text)
            sink.flush()

    def feed(self, chunk: bytes) -> None:
        """Take bytes read from the pipe (called by the pump thread)."""
        self._forward(self._decoder.decode(chunk))
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        if lines:
            with self._lock:
                self._lines.extend(line.decode("utf-8", "replace") for line in lines)

    def eof(self) -> None:
        """The pipe closed: keep the unterminated last line, release the pipe."""
        self._forward(self._decoder.decode(b"", final=True))
        if self._partial:
            with self._lock:
                self._lines.append(self._partial.decode("utf-8", "replace"))
            self._partial = b""
        with contextlib.suppress(OSError):
            self._stream.close()
        self.done.set()

    def text(self) -> str:
        """Return the kept lines joined with newlines."""
        with self._lock:
            return "\n".join(self._lines)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for EOF on the pipe; True if the drain finished."""
        return self.done.wait(timeout)


class _StderrPump:
    """One daemon thread draining every kernel's stderr pipe through a selector.

    A thread per kernel would cost a thread start (milliseconds on a busy machine) on
    every launch and hundreds of threads for hundreds of kernels; an asyncio reader
    would tie the kernel to the loop that launched it. One shared thread does neither.
    """

    _current: _StderrPump | None = None
    _create_lock = threading.Lock()

    @classmethod
    def instance(cls) -> _StderrPump:
        with cls._create_lock:
            pump = cls._current
            # After os.fork() the thread is gone in the child: start a new pump there.
            if pump is None or pump._pid != os.getpid() or not pump._thread.is_alive():
                pump = cls._current = cls()
            return pump

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._pending: list[StderrTail] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="kernel-stderr-pump", daemon=True)
        self._thread.start()

    def add(self, tail: StderrTail) -> None:
        with self._lock:
            self._pending.append(tail)
        with contextlib.suppress(BlockingIOError):  # a wake-up is already pending
            os.write(self._wake_w, b"\0")

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select():
                tail = key.data
                if tail is None:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    with self._lock:
                        pending, self._pending = self._pending, []
                    for new in pending:
                        # A stale entry for this fd number means someone closed an old
                        # pipe behind our back and the number was reused: retire it.
                        with contextlib.suppress(KeyError):
                            stale = self._selector.unregister(new.fd).data
                            stale.eof()
                        self._selector.register(new.fd, selectors.EVENT_READ, new)
                    continue
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    tail.feed(chunk)
                else:
                    with contextlib.suppress(KeyError, ValueError):
                        self._selector.unregister(key.fd)
                    tail.eof()
