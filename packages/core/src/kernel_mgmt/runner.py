"""``kernel-mgmt run TYPE [-c CODE | FILE | -]``: run code in a kernel from the terminal.

The code runs as one cell (or several, split on ``# %%`` lines with ``--cells``; markdown
cells are skipped). Output streams live: stdout/stderr as the kernel writes them,
``execute_result`` text, tracebacks. Rich outputs (PNG, SVG, HTML) are written to files in an
output folder (default ``./kernel-mgmt-output/``, made on first use) and the path is printed in
their place. ``input()`` in the kernel is answered from the terminal. Ctrl-C interrupts the
kernel; a second Ctrl-C while the interrupt is pending quits. SIGTERM and SIGHUP quit the same
way (the kernel is shut down and its files removed). IPython's ``exit()`` in a cell ends the
run there. ``--json`` prints every message as one JSON line. Exit statuses:
:data:`EXIT_CODES_HELP`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import re
import signal
import sys
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 124, 130
#: The exit statuses, as ``--help`` shows them.
EXIT_CODES_HELP = """\
exit status:
  0    every cell ran without error (or a cell called exit())
  1    an error in the code, a dead kernel, a kernel that failed to start,
       or rich outputs that could not be written to the output folder
  2    usage or config error: bad option, unknown kernel type, missing or non-UTF-8
       file, an --output-dir that cannot be made
  124  a cell ran longer than --timeout (it is interrupted first)
  130  interrupted by Ctrl-C (128 + SIGINT)
  143  stopped by SIGTERM (128 + SIGTERM); 129 for SIGHUP
"""
DEFAULT_OUTPUT_DIR = "kernel-mgmt-output"
#: Seconds to wait for the interrupted cell's execute_reply and idle after --timeout, before
#: shutting the kernel down (shutting down mid-reply makes ipykernel log a ZMQError).
INTERRUPT_GRACE_S = 5.0
#: Rich MIME types written to files, with their file extension.
RICH_TYPES = {"image/png": "png", "image/svg+xml": "svg", "text/html": "html"}
#: A cell marker line; group 1 is the rest of the line (title, ``[markdown]``, metadata).
_CELL_MARK = re.compile(r"^# ?%%(.*)$", re.MULTILINE)
#: Jupytext / VS Code percent format: ``# %% [markdown]`` (or ``[md]``) starts a markdown cell.
_MARKDOWN_CELL = re.compile(r"\[(?:markdown|md)\]")
#: Signals that stop a run in order (kernel shut down, files removed), as a second Ctrl-C does;
#: 128 + the signal number is the exit status, as a shell reports a process killed by it.
QUIT_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
#: ANSI colour sequences, as kernels put into tracebacks (CSI ... final byte).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


class OutputDirError(OSError):
    """The output folder for rich outputs cannot be made or written to."""

    def __init__(self, folder: str, why: str) -> None:
        self.folder = folder
        super().__init__(
            f"cannot write rich outputs to folder {os.path.abspath(folder)}: {why} "
            "(choose another with --output-dir DIR)"
        )


class _IntermixedParser(argparse.ArgumentParser):
    """Lets options sit between positionals (``run TYPE --cells FILE``).

    Plain argparse binds an optional positional (FILE) together with TYPE, before it has
    seen FILE, and then rejects FILE as unrecognised (bpo-15112); intermixed parsing does not.
    """

    _parsing = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._parsing:
            return super().parse_known_args(args, namespace)
        self._parsing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False


def _seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0 (a bad value is a usage error, exit 2)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, not {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``run``'s arguments to *parser* (the ``kernel-mgmt run`` subparser)."""
    if type(parser) is argparse.ArgumentParser:
        parser.__class__ = _IntermixedParser
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXIT_CODES_HELP
    parser.add_argument("kernel_type", metavar="TYPE", help="kernel type id, e.g. spec/python3")
    parser.add_argument("file", metavar="FILE", nargs="?", help="file to run; '-' reads stdin")
    parser.add_argument("-c", "--code", help="code to run (instead of FILE)")
    parser.add_argument(
        "--cells",
        action="store_true",
        help="run the code cell by cell, split at '# %%%%' lines; markdown cells "
        "('# %%%% [markdown]' or '# %%%% [md]', as Jupytext and VS Code write them) are skipped; "
        "the run stops at the first cell that fails",
    )
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        help="where rich outputs (PNG, SVG, HTML) are written; made before the kernel "
        "starts, and one that cannot be made or written is a usage error "
        f"(default: ./{DEFAULT_OUTPUT_DIR}/, made on first use)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help="interrupt a cell that runs longer than S seconds and exit 124 (default: no limit)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=_seconds,
        default=60.0,
        metavar="S",
        help="give up (exit 1) if the kernel is not ready after S seconds (default: 60)",
    )
    parser.add_argument(
        "--cwd", metavar="DIR", help="the kernel's working directory (default: the current one)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print every message (IOPub, execute_reply, stdin) as one JSON object per line; "
        "rich outputs are then not written to files",
    )


def split_cells(code: str) -> list[str]:
    """Split on ``# %%`` marker lines (VS Code / Jupytext percent format); drop empty cells
    and markdown cells (``# %% [markdown]``, ``# %% [md]``), which are text, not code."""
    parts = _CELL_MARK.split(code)  # [before the first marker, marker rest, body, ...]
    bodies = [parts[0]]
    for header, body in zip(parts[1::2], parts[2::2], strict=True):
        if not _MARKDOWN_CELL.search(header):
            bodies.append(body)
    cells = [c.strip("\n") for c in bodies]
    return [c for c in cells if c.strip()]


class CodeDecodeError(ValueError):
    """The code file (or stdin) is not UTF-8 text."""

    def __init__(self, source: str, err: UnicodeDecodeError) -> None:
        self.source = source
        hint = "" if source == "stdin" else "; save it as UTF-8 to run it"
        super().__init__(
            f"{source}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at byte offset "
            f"{err.start}){hint}"
        )


def _read_code(args: argparse.Namespace) -> str | None:
    """The code to run, or None if none was given.

    Files and stdin are read as bytes and decoded as UTF-8 (what PEP 3120 makes Python source
    and what kernels expect in execute_request), whatever the locale says.

    :raises OSError: the file cannot be read.
    :raises CodeDecodeError: it is not UTF-8 text.
    """
    if args.code is not None:
        return args.code
    if args.file is None:
        return None
    if args.file == "-":
        source = "stdin"
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read() if stream is not None else sys.stdin.read().encode()
    else:
        source = args.file
        with open(args.file, "rb") as f:
            data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CodeDecodeError(source, e) from None


class _Screen:
    """Writes to stdout/stderr and remembers which one has an unfinished line.

    Kernels often write without a final newline (``print(x, end='')``); our own notes (saved
    image paths, results, messages, tracebacks) must still start on a line of their own.
    The streams are looked up on each write, as test harnesses replace them.
    """

    def __init__(self) -> None:
        self.open = {"stdout": False, "stderr": False}

    def write(self, name: str, text: str) -> None:
        if not text:
            return
        stream = getattr(sys, name)
        stream.write(text)
        stream.flush()
        self.open[name] = not text.endswith("\n")

    def fresh_line(self) -> None:
        """End any unfinished line, so what follows starts a new one (also with ``2>&1``)."""
        for name in ("stdout", "stderr"):
            if self.open[name]:
                self.write(name, "\n")

    def note(self, name: str, text: str) -> None:
        """Write *text* (a complete line or lines) on a fresh line of *name*."""
        self.fresh_line()
        self.write(name, text if text.endswith("\n") else text + "\n")


_screen = _Screen()


class OutputWriter:
    """Shows IOPub messages on the terminal and saves rich outputs to files.

    A folder that cannot be written does not stop the output hook (it runs inside the
    client's message handler): the first failure is reported once, in :attr:`failure`, and
    each rich output not saved is marked in the output so nothing disappears silently.
    """

    def __init__(self, output_dir: str | None, as_json: bool) -> None:
        self.output_dir = output_dir or DEFAULT_OUTPUT_DIR
        self.as_json = as_json
        self.saved: list[str] = []
        self.failure: OutputDirError | None = None
        self._counter = 0

    def _save(self, mime: str, data: Any) -> str:
        if self.failure is not None:
            raise self.failure
        ext = RICH_TYPES[mime]
        try:
            os.makedirs(self.output_dir, exist_ok=True)
        except OSError as e:
            self._fail(f"cannot create it: {e.strerror or e}")
        try:
            while True:
                self._counter += 1
                path = os.path.join(self.output_dir, f"output-{self._counter}.{ext}")
                if not os.path.exists(path):
                    break
            if mime == "image/png":
                with open(path, "wb") as f:
                    f.write(base64.b64decode(data))
            else:
                text = "".join(data) if isinstance(data, list) else str(data)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
        except OSError as e:
            self._fail(f"cannot write {os.path.basename(path)}: {e.strerror or e}")
        self.saved.append(path)
        return path

    def _fail(self, why: str) -> None:
        """Report the first failure to write a rich output (once) and raise it."""
        self.failure = OutputDirError(self.output_dir, why)
        _err(f"{self.failure}; stopping after this cell")
        raise self.failure

    def json_line(self, channel: str, msg: Any) -> None:
        record = {
            "channel": channel,
            "msg_type": msg.msg_type,
            "header": msg.header,
            "parent_header": msg.parent_header,
            "metadata": msg.metadata,
            "content": msg.content,
        }
        _screen.write("stdout", json.dumps(record, default=str) + "\n")

    def __call__(self, msg: Any) -> None:
        if self.as_json:
            self.json_line("iopub", msg)
            return
        msg_type, content = msg.msg_type, msg.content
        if msg_type == "stream":
            name = "stderr" if content.get("name") == "stderr" else "stdout"
            _screen.write(name, content.get("text", ""))
        elif msg_type in ("display_data", "execute_result", "update_display_data"):
            data = content.get("data", {})
            shown = False
            for mime in RICH_TYPES:
                if mime not in data:
                    continue
                label = _MIME_LABELS[mime]
                try:
                    path = self._save(mime, data[mime])
                except OutputDirError:
                    _screen.note("stdout", f"[{label} not saved]")
                else:
                    _screen.note("stdout", f"[{label} saved to {path}]")
                shown = True
            text = data.get("text/plain")
            if text is not None and (msg_type == "execute_result" or not shown):
                _screen.note("stdout", text)
        elif msg_type == "error":
            text = "\n".join(content.get("traceback", [])) + "\n"
            if not _wants_colour(sys.stderr):  # a log file or a pipe: no escape codes in it
                text = _ANSI.sub("", text)
            _screen.note("stderr", text)


_MIME_LABELS = {"image/png": "image", "image/svg+xml": "SVG image", "text/html": "HTML"}


def _wants_colour(stream: Any) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _err(text: str) -> None:
    _screen.note("stderr", f"kernel-mgmt run: {text}")


def check_output_dir(folder: str) -> str | None:
    """Why rich outputs could not be written to *folder*, or None if they can (as far as can
    be told without creating it: the folder is made only when a first rich output comes)."""
    path = os.path.abspath(folder)
    if os.path.exists(path):
        if not os.path.isdir(path):
            return "it exists and is not a folder"
        if not os.access(path, os.W_OK | os.X_OK):
            return "permission denied (not writable)"
        return None
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create it: {parent} is not writable"
    return None


def _selection_hint(finder: Any, type_id: str) -> str:
    """Why the provider of *type_id* may be missing: KERNEL_MGMT_PROVIDERS or the config
    narrows the providers (text to append to an unknown-kernel message, or '')."""
    from kernel_mgmt.cli import provider_selection_hints
    from kernel_mgmt.discovery import ENV_PROVIDERS

    hints = provider_selection_hints(finder)
    env = os.environ.get(ENV_PROVIDERS)
    installed = {info.id for info in finder.providers}  # loaded, failed or disabled
    if not hints and env is not None and type_id.partition("/")[0] not in installed:
        hints = [f"{ENV_PROVIDERS}={env!r} limits which providers load"]
    return "".join(f"\n  hint: {h}" for h in hints)


def _startup_death(type_id: str, err: Any) -> str:
    """The message for a kernel that died while starting (*err*: its KernelDied, which
    names the kernel type when it is known and ends with the kernel's last stderr lines)."""
    text = str(err)
    prefix = "" if type_id in text else f"{type_id}: "
    return f"{prefix}the kernel failed to start: {text}"


async def _start(args: argparse.Namespace, finder: Any) -> tuple[Any, Any] | int:
    """Start the kernel: ``(manager, client)``, or the exit status after saying why not."""
    from kernel_mgmt.client_base import KernelDied
    from kernel_mgmt.discovery import InvalidLaunchParams, NoSuchKernel
    from kernel_mgmt.hl import start_kernel_async
    from kernel_mgmt.subproc.launcher import KernelLaunchError

    type_id = args.kernel_type
    try:
        return await start_kernel_async(
            type_id,
            cwd=args.cwd or os.getcwd(),
            startup_timeout=args.startup_timeout,
            finder=finder,
        )
    except NoSuchKernel as e:
        text = str(e)
        _err(text + ("" if "KERNEL_MGMT_PROVIDERS" in text else _selection_hint(finder, type_id)))
        return EXIT_USAGE
    except InvalidLaunchParams as e:
        _err(str(e))
        return EXIT_USAGE
    except KernelDied as e:
        _err(_startup_death(type_id, e))
        return EXIT_ERROR
    except TimeoutError:
        _err(
            f"{type_id}: the kernel was not ready within {args.startup_timeout:g} s "
            "(--startup-timeout S to wait longer)"
        )
        return EXIT_ERROR
    except KernelLaunchError as e:  # ours: the message already says what and why
        _err(f"{type_id}: {e}")
        return EXIT_ERROR
    except Exception as e:  # anything else a provider's launch hook raised
        provider = type_id.partition("/")[0]
        _err(f"cannot start {type_id}: provider {provider!r} raised {type(e).__name__}: {e}")
        return EXIT_ERROR


def _asked_to_exit(reply: Any) -> bool:
    """True if the cell called IPython's ``exit()``/``quit()``: its execute_reply carries an
    ``ask_exit`` payload (``{"source": "ask_exit", "keepkernel": bool}``)."""
    payload = reply.content.get("payload") or []
    return any(isinstance(p, dict) and p.get("source") == "ask_exit" for p in payload)


async def _run(args: argparse.Namespace, code: str, finder: Any) -> int:
    """Start the kernel, run the code, shut the kernel down; the exit status."""
    cells = split_cells(code) if args.cells else [code]
    writer = OutputWriter(args.output_dir, args.json)
    loop = asyncio.get_running_loop()
    # What a signal handler may cancel: kernel start-up, the running cell, the shutdown wait.
    pending: dict[str, asyncio.Task[Any] | None] = {"start": None, "task": None, "shutdown": None}
    state: dict[str, Any] = {"interrupting": False, "quit": False, "ctrl_c": False, "signal": 0}
    background: set[asyncio.Task[Any]] = set()

    def on_quit_signal(signum: int) -> None:
        # SIGTERM (kill, timeout, a service manager) or SIGHUP (the terminal closed): quit as
        # a second Ctrl-C does, so the kernel is shut down and its connection file removed
        # rather than left behind when the default action kills us. Another one while the
        # kernel is shutting down stops waiting for it: it is killed and its files removed.
        if not state["signal"]:
            state["signal"] = signum
            state["quit"] = True
            _err(f"{signal.Signals(signum).name} received; shutting the kernel down")
        for key in ("start", "task", "shutdown"):
            task = pending[key]
            if task is not None and not task.done():
                task.cancel()

    installed: list[tuple[int, Any]] = []
    for sig in QUIT_SIGNALS:
        previous = signal.getsignal(sig)
        if previous == signal.SIG_IGN:  # nohup and the like: respect an ignored signal
            continue
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_quit_signal, sig)
            installed.append((sig, previous))
    try:
        start = pending["start"] = loop.create_task(_start(args, finder))
        try:
            await asyncio.wait({start})
        except asyncio.CancelledError:  # Ctrl-C while starting: let the start clean up
            start.cancel()
            await asyncio.wait({start})
            raise
        if start.cancelled():
            if not state["signal"]:
                raise asyncio.CancelledError
            # start_kernel_async kills a kernel that is cancelled before it is ready.
            return 128 + state["signal"]
        started = start.result()
        if isinstance(started, int):
            return started
        km, kc = started
        status = await _run_cells(args, cells, writer, km, kc, pending, state, background)
    finally:
        for sig, previous in installed:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
                signal.signal(sig, previous)
    if state["signal"]:
        status = 128 + state["signal"]
    if writer.saved and not args.json:
        folder = os.path.abspath(writer.output_dir)
        _err(f"{len(writer.saved)} rich output(s) written to {folder}")
    return status


async def _run_cells(
    args: argparse.Namespace,
    cells: list[str],
    writer: OutputWriter,
    km: Any,
    kc: Any,
    pending: dict[str, asyncio.Task[Any] | None],
    state: dict[str, Any],
    background: set[asyncio.Task[Any]],
) -> int:
    """Run *cells* in the started kernel, then shut it down; the exit status."""
    from kernel_mgmt.client_base import KernelDied

    loop = asyncio.get_running_loop()

    def quit_status() -> int:
        return 128 + state["signal"] if state["signal"] else EXIT_INTERRUPTED

    def on_sigint() -> None:
        task = pending["task"]
        if task is None or task.done():
            return
        state["ctrl_c"] = True
        if state["interrupting"]:
            # Second Ctrl-C while the first is pending: stop waiting and quit.
            state["quit"] = True
            _err("quitting")
            task.cancel()
            return
        state["interrupting"] = True
        _err("interrupting the kernel (Ctrl-C again to quit)")
        t = loop.create_task(kc.interrupt())
        background.add(t)
        t.add_done_callback(background.discard)

    def on_shell(msg: Any) -> None:
        if args.json and msg.msg_type == "execute_reply":
            writer.json_line("shell", msg)

    def on_stdin(msg: Any) -> None:
        if args.json:
            writer.json_line("stdin", msg)

    status = EXIT_OK
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    kc.add_handler(on_shell, "shell")
    kc.add_handler(on_stdin, "stdin")
    try:
        for cell in cells:
            if state["signal"]:
                status = quit_status()
                break
            state["interrupting"] = False
            task = pending["task"] = loop.create_task(
                kc.execute_interactive(cell, output_hook=writer, stop_on_error=True)
            )
            await asyncio.wait({task}, timeout=args.timeout)
            if not task.done():
                _err(f"the cell ran longer than --timeout {args.timeout:g} s; interrupting it")
                state["interrupting"] = True
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(kc.interrupt(), INTERRUPT_GRACE_S)
                # Let the kernel send the interrupted cell's execute_reply and idle before the
                # shutdown_request: a kernel shut down mid-reply logs a ZMQError traceback.
                await asyncio.wait({task}, timeout=INTERRUPT_GRACE_S)
                if not task.done():
                    task.cancel()
                    await asyncio.wait({task})
                if not task.cancelled():
                    task.exception()  # retrieved: a reply or KernelDied no longer matters
                status = quit_status() if state["quit"] else EXIT_TIMEOUT
                break
            if task.cancelled():
                if not state["quit"]:
                    raise asyncio.CancelledError
                status = quit_status()
                break
            try:
                reply = task.result()
            except KernelDied as e:
                _err(str(e))
                status = EXIT_ERROR
                break
            if state["ctrl_c"] or state["signal"]:  # the user stopped the run
                status = quit_status()  # (the cell may have caught the KeyboardInterrupt)
                break
            if writer.failure is not None:
                status = EXIT_ERROR
                break
            if reply.content.get("status") != "ok":
                if reply.content.get("status") == "aborted":
                    _err("execution was aborted")
                status = EXIT_ERROR
                break
            if _asked_to_exit(reply):  # exit() is a normal end of the run, like the last cell
                break
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        shutdown = pending["shutdown"] = loop.create_task(
            kc.shutdown_or_terminate(timeout=1.0 if state["quit"] else 5.0)
        )
        try:
            await asyncio.wait({shutdown})
            if not shutdown.cancelled():  # cancelled by a quit signal: kill it below
                shutdown.result()
        finally:
            if not shutdown.done():  # we were cancelled (Ctrl-C while shutting down)
                shutdown.cancel()
            with contextlib.suppress(Exception):
                await km.kill()
            with contextlib.suppress(Exception):
                await km.cleanup()
            kc.close()
    return status


def run(args: argparse.Namespace) -> int:
    """Run ``kernel-mgmt run`` with parsed *args*; returns the exit status."""
    from kernel_mgmt.config import ConfigError

    if args.code is not None and args.file is not None:
        _err("give either -c CODE or FILE, not both")
        return EXIT_USAGE
    if args.cwd is not None and not os.path.isdir(args.cwd):
        why = "not a folder" if os.path.exists(args.cwd) else "no such folder"
        _err(f"--cwd {args.cwd}: {why}")
        return EXIT_USAGE
    if args.output_dir is not None and not args.json:
        # Only a folder the user asked for is checked up front (a usage error, exit 2), and
        # made once the code is read: an access check alone passes folders that cannot be
        # made (/proc/x as root). The default one is made on first use: a run without rich
        # outputs must work in a folder the user cannot write to; one with them then fails
        # there (OutputDirError, exit 1).
        why = check_output_dir(args.output_dir)
        if why is not None:
            _err(str(OutputDirError(args.output_dir, why)))
            return EXIT_USAGE
    try:
        code = _read_code(args)
    except OSError as e:
        _err(f"cannot read {args.file}: {e.strerror or e}")
        return EXIT_USAGE
    except CodeDecodeError as e:
        _err(str(e))
        return EXIT_USAGE
    if code is None:
        _err("give the code to run: -c CODE, a FILE, or - for stdin")
        return EXIT_USAGE
    if args.output_dir is not None and not args.json:
        try:
            os.makedirs(args.output_dir, exist_ok=True)
        except OSError as e:
            why = f"cannot create it: {e.strerror or e}"
            _err(str(OutputDirError(args.output_dir, why)))
            return EXIT_USAGE
    try:
        from kernel_mgmt.discovery import KernelFinder

        try:
            finder = KernelFinder.from_entrypoints()
        except ConfigError as e:  # as `kernel-mgmt list` reports it: a usage/config error
            _err(str(e))
            return EXIT_USAGE
        return asyncio.run(_run(args, code, finder))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        _screen.fresh_line()  # a shell prompt must not follow output without a newline


def main(argv: list[str] | None = None) -> int:
    """``python -m kernel_mgmt.runner TYPE ...`` (the same as ``kernel-mgmt run``)."""
    parser = argparse.ArgumentParser(prog="kernel-mgmt run", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
