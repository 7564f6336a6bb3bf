"""A base class for kernels that drive a program's own REPL: bash, ``python3 -i``, sqlite3.

Describe the program with class attributes and :class:`ReplKernel` does the rest::

    class BashKernel(ReplKernel):
        implementation = "bash-repl"
        language = "bash"
        repl_command = ["bash", "--norc", "--noprofile", "--noediting", "-i"]
        prompt_change = "PS1='{ps1}' PS2='{ps2}' PROMPT_COMMAND=''"

Each cell is typed into the program a line at a time, each line once the program shows a
prompt again. Output goes to the frontend while the command runs; an interrupt (SIGINT or
``interrupt_request``) is passed on as Ctrl-C and the reply waits until the prompt is back;
a program that exits or crashes is started again and the cell's reply says so; a cell that
runs past ``cell_timeout`` is interrupted; questions the program asks (``read``, ``input()``)
go to the frontend as ``input_request`` when the request allows stdin (how they are told
from a slow command: :mod:`wrapper_kernel.ttywait`).

Needs pexpect (``pip install 'wrapper-kernel[repl]'``).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from .kernelbase import Kernel
from .replprocess import Prompt, ReplExited, ReplProcess, ReplTimeout

__all__ = ["ReplExited", "ReplKernel"]

#: Environment variable that overrides :attr:`ReplKernel.cell_timeout` (seconds; 0: none),
#: e.g. from a kernelspec's ``env``.
TIMEOUT_ENV = "WRAPPER_KERNEL_CELL_TIMEOUT"


class ReplKernel(Kernel):
    """A kernel whose language is run by an interactive program in a pseudo-terminal.

    Placeholders in :attr:`prompt_change` and :attr:`init_commands`: ``{ps1}``/``{ps2}`` (the
    prompts to set), ``{marker}`` (this kernel's random marker), ``{error_begin}`` and
    ``{error_end}`` (lines the program may print around an error's text; what lies between
    them becomes the cell's error instead of output).
    """

    #: The program and its arguments. Run with ``TERM=dumb`` and echo off.
    repl_command: ClassVar[Sequence[str]] = ()
    #: Added to the program's environment.
    repl_env: ClassVar[dict[str, str]] = {}
    #: A command that sets the program's prompts to ``{ps1}`` and ``{ps2}``; None: the
    #: program's own prompts are used, :attr:`ps1_regex`/:attr:`ps2_regex` must match them.
    prompt_change: ClassVar[str | None] = None
    #: The prompts to set: ``{marker}`` makes them unique.
    ps1: ClassVar[str] = "{marker}>"
    ps2: ClassVar[str | None] = "{marker}+"
    #: What the program prints for them, as regexes (default: the prompts themselves). A
    #: group named ``status`` is the exit status a prompt shows (see bash's ``$?``).
    ps1_regex: ClassVar[str | None] = None
    ps2_regex: ClassVar[str | None] = None
    #: Run once the prompts are set (their output is discarded).
    init_commands: ClassVar[Sequence[str]] = ()
    #: Seconds a cell may run before it is interrupted (None: no limit). The environment
    #: variable ``WRAPPER_KERNEL_CELL_TIMEOUT`` overrides it.
    cell_timeout: ClassVar[float | None] = None
    #: How long an interrupted command has to give the prompt back before the program is
    #: killed and started again.
    interrupt_timeout: ClassVar[float] = 3.0
    #: How long the program may take to show its first prompt.
    start_timeout: ClassVar[float] = 20.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.marker = "WK" + secrets.token_hex(5)
        self.error_begin = self.marker + "<error"
        self.error_end = self.marker + "error>"
        self.repl: ReplProcess | None = None
        self._ready = False
        self._closing = False
        self._error_lines: list[str] | None = None  # inside error_begin ... error_end
        self._cell_errors: list[str] = []
        self._silent = False
        self._note: str | None = None  # why the program was restarted (reported once)
        self._deadline: float | None = None  # the running cell's (cell_timeout)
        self._input_timed_out = False
        timeout = os.environ.get(TIMEOUT_ENV, "").strip()
        self.timeout: float | None = self.cell_timeout
        if timeout:
            try:
                self.timeout = float(timeout) or None
            except ValueError:
                self.log.warning("%s=%r is not a number of seconds; ignored", TIMEOUT_ENV, timeout)
        # Start now: the program starts up while the frontend is still connecting.
        try:
            self._spawn()
        except ReplExited as e:
            self._note = str(e)

    # -- the program ----------------------------------------------------------------------------

    def _fill(self, template: str) -> str:
        for key, value in (
            ("{ps1}", self.ps1.replace("{marker}", self.marker)),
            ("{ps2}", (self.ps2 or "").replace("{marker}", self.marker)),
            ("{error_begin}", self.error_begin),
            ("{error_end}", self.error_end),
            ("{marker}", self.marker),
        ):
            template = template.replace(key, value)
        return template

    def _regex(self, regex: str | None, prompt: str | None) -> str | None:
        if regex is not None:
            return regex.replace("{marker}", re.escape(self.marker))
        if prompt is None:
            return None
        return re.escape(prompt.replace("{marker}", self.marker))

    def _spawn(self) -> None:
        if not self.repl_command:
            raise ReplExited(f"{type(self).__name__} sets no repl_command")
        ps1 = self._regex(self.ps1_regex, self.ps1)
        assert ps1 is not None
        self.repl = ReplProcess(
            self.repl_command,
            ps1=ps1,
            ps2=self._regex(self.ps2_regex, self.ps2),
            marker=self.marker if self.prompt_change else "",
            env={**os.environ, **self.repl_env},
        )
        self._ready = False
        self.repl.start()
        if self.prompt_change:
            self.repl.send(self._fill(self.prompt_change) + "\n")

    def _discard(self, text: str) -> None:
        pass

    def _ensure_ready(self) -> None:
        """Wait for the first prompt (after ``prompt_change``) and run ``init_commands``."""
        if self._ready and self.repl is not None:
            return
        if self.repl is None:
            self._spawn()
        repl = self.repl
        assert repl is not None
        deadline = time.monotonic() + self.start_timeout
        try:
            # With prompt_change, the program's own first prompt does not match: it is
            # discarded with any banner.
            repl.wait_prompt(self._discard, None, deadline)
            for command in self.init_commands:
                for line in self._fill(command).split("\n"):
                    repl.run(line, self._discard, None, deadline)
        except ReplTimeout:
            repl.kill()
            self.repl = None
            raise ReplExited(
                f"{repl.name} did not show its prompt within {self.start_timeout:g} s"
            ) from None
        self._ready = True

    def restart_repl(self) -> None:
        """Kill the program (if it runs) and start a fresh one, ready at its prompt."""
        if self.repl is not None:
            self.repl.kill()
        self.repl = None
        self._ready = False
        self._spawn()
        self._ensure_ready()

    def run_command(self, command: str, timeout: float = 10.0) -> str:
        """Run ``command`` out of sight (for completion, inspection) and return its output."""
        self._ensure_ready()
        assert self.repl is not None
        out: list[str] = []
        try:
            self.repl.run(command, out.append, None, time.monotonic() + timeout)
        except ReplTimeout:
            self._recover("timed out")  # the program must be at its prompt for the next cell
            raise
        return "".join(out)

    # -- output ---------------------------------------------------------------------------------

    def process_output(self, text: str) -> None:
        """Hand the program's output to the frontend (override to find rich output in it)."""
        self.send_stream(text)

    def _output(self, text: str) -> None:
        if self._silent:
            return
        if self._error_lines is None and self.marker not in text:
            self.process_output(text)
            return
        plain: list[str] = []
        for line in text.splitlines(keepends=True):
            bare = line.rstrip("\r\n")
            if self._error_lines is None:
                if bare == self.error_begin:
                    self._error_lines = []
                else:
                    plain.append(line)
            elif bare == self.error_end:
                self._cell_errors.append("".join(self._error_lines))
                self._error_lines = None
            else:
                self._error_lines.append(line)
        if plain:
            self.process_output("".join(plain))

    def _input(self, prompt: str, password: bool) -> str | None:
        if not self._allow_stdin:
            self.send_stream(
                f"[{self.implementation}: the program asked for input ({prompt.strip()!r}), "
                "but this frontend does not accept input (allow_stdin is false): sent "
                "end-of-file]\n",
                "stderr",
            )
            return None
        deadline, server = self._deadline, self._server
        if deadline is None or server is None:
            return self.getpass(prompt) if password else self.raw_input(prompt)
        # The frontend may never answer: at the cell's deadline, interrupt the wait.
        import threading

        def expire() -> None:
            self._input_timed_out = True
            server.interrupt()

        timer = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
        timer.daemon = True
        timer.start()
        try:
            return self.getpass(prompt) if password else self.raw_input(prompt)
        finally:
            timer.cancel()

    # -- cells ----------------------------------------------------------------------------------

    def cell_commands(self, code: str) -> list[str]:
        """The lines to type for a cell (override for a language with other needs)."""
        return code.rstrip("\n").split("\n")

    def check_result(self, statuses: list[int | None]) -> dict[str, Any] | None:
        """An error reply for a cell that ran to its end, or None for ok. ``statuses`` are the
        exit statuses the prompts after each command showed (None where they show none)."""
        return None

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
    ) -> dict[str, Any]:
        self._silent = silent
        self._cell_errors = []
        self._error_lines = None
        if self._note is not None or (self.repl is not None and not self.repl.alive()):
            # The program ended between cells: start a new one, and do not run this cell
            # on a state that is not the one the user built.
            name = self.repl.name if self.repl is not None else self.repl_command[0]
            why = self._note or f"{name} {self.repl.exit_description()}"  # type: ignore[union-attr]
            self._note = None
            return self._restart_error(f"{why} since the last cell", ran=False)
        if not code.strip():
            return self._ok()
        deadline = time.monotonic() + self.timeout if self.timeout else None
        self._deadline, self._input_timed_out = deadline, False
        statuses: list[int | None] = []
        try:
            self._ensure_ready()
            assert self.repl is not None
            prompt: Prompt | None = None
            for line in self.cell_commands(code):
                prompt = self.repl.run(line, self._output, self._input, deadline)
                if prompt.kind == "ps1":
                    statuses.append(prompt.status)
            if prompt is not None and prompt.kind == "ps2":
                self._recover(f"{self.repl.name} waits for more input")
                return self.error_reply(
                    "IncompleteInput",
                    f"the cell is incomplete: {self.repl.name} is waiting for more lines",
                )
        except KeyboardInterrupt:
            if not self._input_timed_out:
                self._recover("interrupted")
                return self.error_reply("KeyboardInterrupt", "interrupted")
            self._recover("timed out")  # waiting for the frontend's answer: see _input
            return self.error_reply(
                "TimeoutError",
                f"the cell ran longer than {self.timeout:g} s (cell_timeout) and was interrupted",
            )
        except ReplTimeout:
            self._recover("timed out")
            return self.error_reply(
                "TimeoutError",
                f"the cell ran longer than {self.timeout:g} s (cell_timeout) and was interrupted",
            )
        except ReplExited as e:
            if self._closing:
                return self.error_reply("ShutDown", "the kernel is shutting down")
            return self._restart_error(f"{e} while running this cell", ran=True)
        if self._error_lines is not None:  # an unterminated error block
            self._cell_errors.append("".join(self._error_lines))
            self._error_lines = None
        if self._cell_errors:
            return self._error_from_text(self._cell_errors[-1])
        reply = self.check_result(statuses)
        return reply if reply is not None else self._ok()

    def _recover(self, why: str) -> None:
        """Bring the program back to its primary prompt after an interrupt or a timeout:
        Ctrl-C, wait; Ctrl-C again; then kill it and start a new one."""
        repl = self.repl
        assert repl is not None
        for attempt in range(3):
            try:
                if attempt == 2:
                    raise ReplTimeout(why)
                repl.send_interrupt()
                deadline = time.monotonic() + self.interrupt_timeout
                while repl.wait_prompt(self._output, None, deadline).kind != "ps1":
                    repl.send_interrupt()
                repl.settle(self._output)
                return
            except KeyboardInterrupt:
                continue  # interrupted again while waiting: send another Ctrl-C
            except (ReplTimeout, ReplExited):
                break
        try:
            self.restart_repl()
            self.send_stream(
                f"[{repl.name} did not come back to its prompt after Ctrl-C; restarted it]\n",
                "stderr",
            )
        except ReplExited as e:
            self._note = str(e)

    def _restart_error(self, why: str, ran: bool) -> dict[str, Any]:
        name = self.repl.name if self.repl is not None else str(self.repl_command[0])
        try:
            self.restart_repl()
            after = f"started a new {name} (variables and state are reset)"
        except ReplExited as e:
            self._note = str(e)
            after = f"could not start a new one: {e}"
        if not ran:
            after += "; this cell was not run"
        return self.error_reply("ReplRestarted", f"{why}; {after}")

    def _ok(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "execution_count": self.execution_count,
            "payload": [],
            "user_expressions": {},
        }

    def error_reply(
        self, ename: str, evalue: str, traceback: list[str] | None = None
    ) -> dict[str, Any]:
        """An execute error reply, also published as an ``error`` message (spec, "Execution
        errors"); return it from :meth:`check_result` or :meth:`do_execute`."""
        traceback = traceback or [f"{ename}: {evalue}"]
        content = {"ename": ename, "evalue": evalue, "traceback": traceback}
        if not self._silent:
            self.send_response(self.iopub_socket, "error", content)
        return {"status": "error", "execution_count": self.execution_count, **content}

    def _error_from_text(self, text: str) -> dict[str, Any]:
        """An error reply from the text between the error markers: its last line is taken
        as ``Name: value`` (Python's, R's and many others' convention)."""
        lines = text.rstrip("\n").split("\n")
        last = lines[-1].strip() if lines else ""
        name, sep, value = last.partition(": ")
        if not sep or not re.fullmatch(r"[\w.]+", name):
            name, value = "Error", last
        return self.error_reply(name, value, lines)

    # -- the rest of the protocol ------------------------------------------------------------

    def do_shutdown(self, restart: bool) -> dict[str, Any]:
        self._closing = True
        if self.repl is not None:
            # Only a signal: the main thread may be reading the terminal right now, and sees
            # end-of-file; the process exits after this reply anyway.
            self.repl.terminate()
        return {"status": "ok", "restart": restart}
