"""``kernel-mgmt run TYPE [-c CODE | FILE | -]``: run code in a kernel from the terminal.

The code runs as one cell (or several, split on ``# %%`` lines with ``--cells``). Output
streams live: stdout/stderr as the kernel writes them, ``execute_result`` text, tracebacks.
Rich outputs (PNG, SVG, HTML) are written to files in an output folder (default
``./kernel-mgmt-output/``, made on first use) and the path is printed in their place.
``input()`` in the kernel is answered from the terminal. Ctrl-C interrupts the kernel; a second
Ctrl-C while the interrupt is pending quits. ``--json`` prints every message as one JSON line.

Exit status: 0 when every cell succeeded, 1 on an error in the code or a dead kernel,
2 for usage errors and unknown kernel types, 124 on ``--timeout``, 130 when quit by Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import sys
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 124, 130
DEFAULT_OUTPUT_DIR = "kernel-mgmt-output"
#: Rich MIME types written to files, with their file extension.
RICH_TYPES = {"image/png": "png", "image/svg+xml": "svg", "text/html": "html"}
_CELL_MARK = re.compile(r"^# ?%%.*$", re.MULTILINE)
#: ANSI colour sequences, as kernels put into tracebacks (CSI ... final byte).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``run``'s arguments to *parser* (the ``kernel-mgmt run`` subparser)."""
    if type(parser) is argparse.ArgumentParser:
        parser.__class__ = _IntermixedParser
    parser.add_argument("kernel_type", metavar="TYPE", help="kernel type id, e.g. spec/python3")
    parser.add_argument("file", metavar="FILE", nargs="?", help="file to run; '-' reads stdin")
    parser.add_argument("-c", "--code", help="code to run (instead of FILE)")
    parser.add_argument(
        "--cells", action="store_true", help="split the code into cells at '# %%%%' lines"
    )
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        help=f"where rich outputs (images, HTML) go (default: ./{DEFAULT_OUTPUT_DIR}/)",
    )
    parser.add_argument(
        "--timeout", type=float, metavar="S", help="give up on a cell after S seconds (exit 124)"
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="give up if the kernel is not ready after S seconds (default 60)",
    )
    parser.add_argument("--cwd", metavar="DIR", help="the kernel's working directory")
    parser.add_argument(
        "--json", action="store_true", help="print every message as one JSON object per line"
    )


def split_cells(code: str) -> list[str]:
    """Split on ``# %%`` marker lines (VS Code / Jupytext style); drop empty cells."""
    cells = [c.strip("\n") for c in _CELL_MARK.split(code)]
    return [c for c in cells if c.strip()]


def _read_code(args: argparse.Namespace) -> str | None:
    if args.code is not None:
        return args.code
    if args.file is None:
        return None
    if args.file == "-":
        return sys.stdin.read()
    with open(args.file, encoding="utf-8") as f:
        return f.read()


class OutputWriter:
    """Shows IOPub messages on the terminal and saves rich outputs to files."""

    def __init__(self, output_dir: str | None, as_json: bool) -> None:
        self.output_dir = output_dir or DEFAULT_OUTPUT_DIR
        self.as_json = as_json
        self.saved: list[str] = []
        self._counter = 0

    def _save(self, mime: str, data: Any) -> str:
        os.makedirs(self.output_dir, exist_ok=True)
        ext = RICH_TYPES[mime]
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
        self.saved.append(path)
        return path

    def json_line(self, channel: str, msg: Any) -> None:
        record = {
            "channel": channel,
            "msg_type": msg.msg_type,
            "header": msg.header,
            "parent_header": msg.parent_header,
            "metadata": msg.metadata,
            "content": msg.content,
        }
        sys.stdout.write(json.dumps(record, default=str) + "\n")
        sys.stdout.flush()

    def __call__(self, msg: Any) -> None:
        if self.as_json:
            self.json_line("iopub", msg)
            return
        msg_type, content = msg.msg_type, msg.content
        if msg_type == "stream":
            stream = sys.stderr if content.get("name") == "stderr" else sys.stdout
            stream.write(content.get("text", ""))
            stream.flush()
        elif msg_type in ("display_data", "execute_result", "update_display_data"):
            data = content.get("data", {})
            saved = [self._save(m, data[m]) for m in RICH_TYPES if m in data]
            for path in saved:
                sys.stdout.write(f"[{_mime_label(path)} saved to {path}]\n")
            text = data.get("text/plain")
            if text is not None and (msg_type == "execute_result" or not saved):
                sys.stdout.write(text if text.endswith("\n") else text + "\n")
            sys.stdout.flush()
        elif msg_type == "error":
            sys.stdout.flush()
            text = "\n".join(content.get("traceback", [])) + "\n"
            if not _wants_colour(sys.stderr):  # a log file or a pipe: no escape codes in it
                text = _ANSI.sub("", text)
            sys.stderr.write(text)
            sys.stderr.flush()


def _wants_colour(stream: Any) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _mime_label(path: str) -> str:
    return {"png": "image", "svg": "SVG image", "html": "HTML"}[path.rsplit(".", 1)[1]]


def _err(text: str) -> None:
    sys.stdout.flush()
    print(f"kernel-mgmt run: {text}", file=sys.stderr, flush=True)


async def _run(args: argparse.Namespace, code: str) -> int:
    from kernel_mgmt.client_base import KernelDied
    from kernel_mgmt.discovery import InvalidLaunchParams, NoSuchKernel
    from kernel_mgmt.hl import start_kernel_async

    cells = split_cells(code) if args.cells else [code]
    writer = OutputWriter(args.output_dir, args.json)
    loop = asyncio.get_running_loop()
    try:
        km, kc = await start_kernel_async(
            args.kernel_type,
            cwd=args.cwd or os.getcwd(),
            startup_timeout=args.startup_timeout,
        )
    except (NoSuchKernel, InvalidLaunchParams) as e:
        _err(str(e))
        return EXIT_USAGE
    except KernelDied as e:
        _err(f"the kernel failed to start: {e}")
        return EXIT_ERROR
    except TimeoutError as e:
        _err(str(e))
        return EXIT_ERROR
    except Exception as e:  # a provider's launch error (KernelLaunchError, OSError, ...)
        _err(f"cannot start {args.kernel_type}: {e}")
        return EXIT_ERROR

    current: dict[str, asyncio.Task[Any] | None] = {"task": None}
    state = {"interrupting": False, "quit": False}
    background: set[asyncio.Task[Any]] = set()

    def on_sigint() -> None:
        task = current["task"]
        if task is None or task.done():
            return
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
            state["interrupting"] = False
            current["task"] = loop.create_task(
                kc.execute_interactive(
                    cell,
                    output_hook=writer,
                    timeout=args.timeout,
                    stop_on_error=True,
                )
            )
            try:
                reply = await current["task"]
            except asyncio.CancelledError:
                if not state["quit"]:
                    raise
                status = EXIT_INTERRUPTED
                break
            except TimeoutError:
                _err(f"the cell did not finish within {args.timeout} s; interrupting it")
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(kc.interrupt(), 5)
                status = EXIT_TIMEOUT
                break
            except KernelDied as e:
                _err(str(e))
                status = EXIT_ERROR
                break
            if reply.content.get("status") != "ok":
                if reply.content.get("status") == "aborted":
                    _err("execution was aborted")
                status = EXIT_ERROR
                break
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        try:
            await kc.shutdown_or_terminate(timeout=1.0 if state["quit"] else 5.0)
        finally:
            with contextlib.suppress(Exception):
                await km.kill()
            with contextlib.suppress(Exception):
                await km.cleanup()
            kc.close()
    if writer.saved and not args.json:
        folder = os.path.abspath(writer.output_dir)
        _err(f"{len(writer.saved)} rich output(s) written to {folder}")
    return status


def run(args: argparse.Namespace) -> int:
    """Run ``kernel-mgmt run`` with parsed *args*; returns the exit status."""
    if args.code is not None and args.file is not None:
        _err("give either -c CODE or FILE, not both")
        return EXIT_USAGE
    try:
        code = _read_code(args)
    except OSError as e:
        _err(f"cannot read {args.file}: {e.strerror or e}")
        return EXIT_USAGE
    if code is None:
        _err("give the code to run: -c CODE, a FILE, or - for stdin")
        return EXIT_USAGE
    try:
        return asyncio.run(_run(args, code))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    """``python -m kernel_mgmt.runner TYPE ...`` (the same as ``kernel-mgmt run``)."""
    parser = argparse.ArgumentParser(prog="kernel-mgmt run", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
