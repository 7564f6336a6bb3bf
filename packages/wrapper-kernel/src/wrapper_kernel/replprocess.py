"""A program with a prompt (bash, ``python3 -i``, sqlite3) run in a pseudo-terminal.

:class:`ReplProcess` types one line at a time and knows the program is done with it when a
prompt comes back: primary (``PS1``: ready) or continuation (``PS2``: more lines needed).
Prompts carry a random marker where the program lets us set them. Output is handed on while
the command runs: complete lines at once (at most one hand-over per ``stream_interval`` in a
flood), a partial line after ``partial_delay`` of quiet, or, if the program is then blocked
reading the terminal (:mod:`wrapper_kernel.ttywait`), as the question the caller answers.
Uses ``ptyprocess`` (pexpect's: ``pip install 'wrapper-kernel[repl]'``), imported at start().
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import select
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .ttywait import session_members, waiting_for_input

__all__ = ["Prompt", "ReplExited", "ReplProcess", "ReplTimeout"]


class ReplExited(Exception):
    """The program exited (or was killed) while we waited for its prompt."""


class ReplTimeout(Exception):
    """The program did not show its prompt within the time allowed."""


class Prompt:
    """A prompt the program printed: ``kind`` is ``"ps1"`` or ``"ps2"``."""

    __slots__ = ("kind", "match")

    def __init__(self, kind: str, match: re.Match[str]) -> None:
        self.kind, self.match = kind, match

    @property
    def status(self) -> int | None:
        """The exit status a prompt reports (a regex group named ``status``), if any."""
        value = self.match.groupdict().get("status")
        return int(value) if value and value.isdigit() else None


#: on_output(text) hands text over; on_input(prompt, password) answers (None: end-of-file).
OutputFn = Callable[[str], None]
InputFn = Callable[[str, bool], "str | None"]

_PASSWORD = re.compile(r"pass(word|phrase)|\bPIN\b", re.IGNORECASE)


def _restore_signals() -> None:
    """In the child: default SIGINT/SIGPIPE (an ignored SIGPIPE would outlive exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


class ReplProcess:
    """One run of the program; :meth:`start` it, then :meth:`run` lines in it."""

    #: Longest wait between two hand-overs of complete lines while output floods in.
    stream_interval = 0.02
    #: Quiet time after which a partial line is handed over (or taken as a question).
    partial_delay = 0.05

    def __init__(
        self,
        argv: Sequence[str],
        *,
        ps1: str,
        ps2: str | None,
        marker: str = "",
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        name: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.name = name or os.path.basename(self.argv[0])
        self.ps1 = re.compile(ps1)
        self.ps2 = re.compile(ps2) if ps2 else None
        #: A literal that starts every prompt and marker line: text that may be its beginning
        #: is held back until the next read tells.
        self.marker = marker
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: Any = None
        self.tty = ""
        self._buf = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._cr = False  # the last chunk ended in "\r" (maybe half of "\r\n")

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the program in a new pty (returns at once; its prompt comes later)."""
        try:
            from ptyprocess import PtyProcess
        except ImportError:  # pragma: no cover - exercised only without the extra
            raise ImportError(
                "REPL kernels need pexpect: pip install 'wrapper-kernel[repl]'"
            ) from None
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("TERM", "dumb")  # no colour codes or cursor tricks in the output
        # GNU readline (sqlite3, python3 -i) would wrap each line in bracketed-paste escapes.
        env.setdefault("INPUTRC", os.path.join(os.path.dirname(__file__), "inputrc"))
        try:
            self.proc = PtyProcess.spawn(
                self.argv,
                env=env,
                cwd=self.cwd,
                echo=False,
                preexec_fn=_restore_signals,
                dimensions=(24, 200),
            )
        except (OSError, FileNotFoundError) as e:
            raise ReplExited(f"could not start {' '.join(self.argv)}: {e}") from None
        self._buf = ""
        self._decoder.reset()
        self._cr = False
        with contextlib.suppress(Exception):  # termios.error: harmless, "\r\n" is undone too
            import termios

            attrs = termios.tcgetattr(self.proc.fd)
            attrs[1] &= ~termios.ONLCR  # "\n" stays "\n"
            termios.tcsetattr(self.proc.fd, termios.TCSANOW, attrs)
        try:
            self.tty = os.readlink(f"/proc/{self.proc.pid}/fd/0")
        except OSError:
            self.tty = ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.isalive()

    def kill(self) -> None:
        """Kill the program and everything in its session's foreground, and reap it."""
        proc = self.proc
        if proc is None:
            return
        self.terminate()
        with contextlib.suppress(Exception):
            proc.wait()
        # Close through ptyprocess's file object: closing the bare fd would leave that object
        # to close the same number again when collected, by then another pty's.
        with contextlib.suppress(OSError):
            proc.fileobj.close()
        proc.closed = True
        proc.fd = -1

    def terminate(self) -> None:
        """SIGKILL the program's session (safe from another thread; :meth:`kill` reaps)."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(OSError):
            pgid = os.tcgetpgrp(proc.fd)
            # Never 0 or our own group: killpg(0) would kill the kernel and its launcher.
            if pgid > 1 and pgid != os.getpgrp():
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)  # the program leads its own session
        for pid in session_members(proc.pid):  # jobs in other groups of its session
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def exit_description(self) -> str:
        """How the program ended: ``exited with status 1``, ``was killed by SIGKILL``."""
        proc = self.proc
        if proc is None:
            return "was not started"
        # The terminal reports end-of-file while the process is still exiting: give it a
        # moment to become reapable.
        deadline = time.monotonic() + 1.0
        with contextlib.suppress(Exception):
            while proc.isalive():
                if time.monotonic() > deadline:
                    return "stopped answering"
                time.sleep(0.005)
        if proc.signalstatus is not None:
            try:
                sig = signal.Signals(proc.signalstatus).name
            except ValueError:
                sig = f"signal {proc.signalstatus}"
            return f"was killed by {sig}"
        return f"exited with status {proc.exitstatus}"

    # -- writing ----------------------------------------------------------------------------------

    def send(self, text: str) -> None:
        """Type ``text`` (one line should end with ``"\\n"``)."""
        data = text.encode("utf-8")
        while data:
            try:
                n = os.write(self.proc.fd, data)
            except OSError as e:
                raise ReplExited(f"{self.name} {self.exit_description()}") from e
            data = data[n:]

    def send_interrupt(self) -> None:
        """Ctrl-C as typed (SIGINT to the foreground command; typed-ahead input dropped)."""
        try:
            import termios

            attrs = termios.tcgetattr(self.proc.fd)
            if attrs[3] & termios.ISIG:
                intr = attrs[6][termios.VINTR]
                self.send(intr.decode() if isinstance(intr, bytes) else chr(intr))
                return
        except (ImportError, OSError, Exception):  # termios.error: fall back to the signal
            pass
        with contextlib.suppress(OSError):
            pgid = os.tcgetpgrp(self.proc.fd)
            if pgid > 1 and pgid != os.getpgrp():
                os.killpg(pgid, signal.SIGINT)

    # -- reading ----------------------------------------------------------------------------------

    def _read(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for output and add it to the buffer; False if none came."""
        fd = self.proc.fd
        try:
            ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
        except (OSError, ValueError):  # the terminal was closed under us (kill())
            raise ReplExited(f"{self.name} {self.exit_description()}") from None
        if not ready:
            return False
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the program and every holder of the terminal are gone
            data = b""
        if not data:
            rest = self._decoder.decode(b"", final=True)
            self._buf += rest
            raise ReplExited(f"{self.name} {self.exit_description()}")
        text = self._decoder.decode(data)
        if self._cr:
            text = "\r" + text
        self._cr = text.endswith("\r")
        if self._cr:
            text = text[:-1]
        self._buf += text.replace("\r\n", "\n")
        return True

    def _find_prompt(self) -> Prompt | None:
        best: Prompt | None = None
        for kind, rx in (("ps1", self.ps1), ("ps2", self.ps2)):
            if rx is None:
                continue
            m = rx.search(self._buf)
            if m and (best is None or m.start() < best.match.start()):
                best = Prompt(kind, m)
        return best

    def _hold_from(self, text: str) -> int:  # where a possible prompt/marker begins
        marker = self.marker
        if not marker:
            return len(text)
        at = text.find(marker)
        if at >= 0:
            return at
        for n in range(min(len(marker) - 1, len(text)), 0, -1):
            if text.endswith(marker[:n]):
                return len(text) - n
        return len(text)

    def drain(self, on_output: OutputFn) -> None:
        """Hand over waiting output (a background job's); drop stray prompts (from a Ctrl-C
        that raced a prompt)."""
        with contextlib.suppress(ReplExited):
            while self._read(0):
                pass
        text = self._buf
        self._buf = ""
        for rx in (self.ps1, self.ps2):
            if rx is not None:
                text = rx.sub("", text)
        if text:
            on_output(text)

    def wait_prompt(
        self,
        on_output: OutputFn,
        on_input: InputFn | None = None,
        deadline: float | None = None,
    ) -> Prompt:
        """Hand over output until the next prompt; return it.

        Raises :class:`ReplExited` if the program ends, :class:`ReplTimeout` at ``deadline``
        (``time.monotonic()``), and lets ``KeyboardInterrupt`` (an interrupt of the kernel)
        through: the caller then calls :meth:`send_interrupt` and waits again.
        """
        last_flush = 0.0
        last_data = time.monotonic()
        input_checks = 0
        next_check = last_data + self.partial_delay
        while True:
            prompt = self._find_prompt()
            if prompt is not None:
                text = self._buf[: prompt.match.start()]
                self._buf = self._buf[prompt.match.end() :]
                if text:
                    on_output(text)
                return prompt
            now = time.monotonic()
            # Complete lines, and progress bars' frames ("\r"); a huge partial line in parts.
            newline = max(self._buf.rfind("\n"), self._buf.rfind("\r")) + 1
            if len(self._buf) - newline > 65536:
                newline = len(self._buf) - len(self.marker)
            if newline and now - last_flush >= self.stream_interval:
                # Complete lines: at once, unless the last hand-over was a moment ago.
                text, self._buf = self._buf[:newline], self._buf[newline:]
                on_output(text)
                last_flush = now
                continue
            wait = next_check - now
            if newline:
                wait = min(wait, last_flush + self.stream_interval - now)
            if deadline is not None:
                if now >= deadline:
                    raise ReplTimeout(f"{self.name} did not show its prompt in time")
                wait = min(wait, deadline - now)
            if self._read(max(0.0, wait)):
                last_data = time.monotonic()
                next_check = last_data + self.partial_delay
                input_checks = 0
                continue
            now = time.monotonic()
            if now < next_check or self._find_prompt() is not None:
                continue
            if not self.proc.isalive():
                # Dead, though a child of it may still hold the terminal open (no EOF yet).
                raise ReplExited(f"{self.name} {self.exit_description()}")
            # Quiet: is the program asking something? Cheap checks first, a /proc scan less
            # often (0.05, 0.15, 0.35, 0.75 s, then every second of quiet).
            input_checks += 1
            next_check = now + min(1.0, self.partial_delay * 2**input_checks)
            tail_at = newline
            tail = self._buf[tail_at:]
            asking = self._asking(tail, scan=input_checks % 2 == 0 or input_checks > 4)
            if asking and on_input is not None:
                # The pending partial line is the question: it is not output.
                self._buf = self._buf[:tail_at]
                if self._buf:
                    on_output(self._buf)
                    self._buf = ""
                answer = on_input(tail, bool(_PASSWORD.search(tail)))
                self.send("\x04" if answer is None else answer + "\n")
                last_data = time.monotonic()
                next_check = last_data + self.partial_delay
                input_checks = 0
                continue
            hold = tail_at + self._hold_from(tail)
            if hold > 0:
                text, self._buf = self._buf[:hold], self._buf[hold:]
                on_output(text)
                last_flush = now

    def _asking(self, tail: str, scan: bool) -> bool:
        """Whether the program waits for a line typed at the terminal."""
        if self.tty:
            state = waiting_for_input(self.proc.fd, self.tty, self.proc.pid, scan=scan)
            if state is not None:
                return state
        # No way to ask the system: a question is a partial line followed by silence.
        return bool(tail.strip()) and scan

    def run(
        self,
        line: str,
        on_output: OutputFn,
        on_input: InputFn | None = None,
        deadline: float | None = None,
    ) -> Prompt:
        """Type ``line``, hand over its output, return the prompt that follows it."""
        self.drain(on_output)
        self.send(line + "\n")
        return self.wait_prompt(on_output, on_input, deadline)

    def settle(self, on_output: OutputFn, quiet: float = 0.01, limit: float = 0.5) -> None:
        """After an interrupt: wait until the program is quiet, dropping extra prompts. Quiet
        is sure at once when it is blocked reading the terminal with no output pending: a
        second prompt would have been printed before that read."""
        end = time.monotonic() + limit
        with contextlib.suppress(ReplExited):
            while time.monotonic() < end:
                if self._read(0):
                    continue
                if self.tty and waiting_for_input(self.proc.fd, self.tty, self.proc.pid, False):
                    if not self._read(0):
                        break
                elif not self._read(quiet):
                    break
        self.drain(on_output)
