"""What ``kernel-mgmt run`` reads: its command line, and the code (``-c``, a file, stdin).

The options are added to the ``run`` subparser only when ``run`` is asked for; the code is one
cell or, with ``--cells``, several split on ``# %%`` lines (markdown cells skipped).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from typing import Any

from .runner_output import DEFAULT_OUTPUT_DIR

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
  141  the reader of its output went away (| head); the kernel is shut down first
"""


#: A cell marker line; group 1 is the rest of the line (title, ``[markdown]``, metadata).
_CELL_MARK = re.compile(r"^# ?%%(.*)$", re.MULTILINE)


#: Jupytext / VS Code percent format: ``# %% [markdown]`` (or ``[md]``) starts a markdown cell.
_MARKDOWN_CELL = re.compile(r"\[(?:markdown|md)\]")


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
        "rich outputs are then not written to files. The first line (msg_type "
        "'kernel_started') names the kernel type, its transport and its encryption "
        "('curve' or null)",
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
