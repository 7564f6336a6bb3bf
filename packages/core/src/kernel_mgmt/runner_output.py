"""What ``kernel-mgmt run`` shows: the kernel's output on the terminal, rich output in files.

:class:`OutputWriter` is the ``execute_interactive`` output hook of a run: streams as the kernel
writes them, ``execute_result`` text, tracebacks (ANSI colour kept only on a terminal); PNG, SVG
and HTML outputs are written to the output folder and their path printed in their place.
``--json`` prints every message as one JSON line instead.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any

#: Rich MIME types written to files, with their file extension.
RICH_TYPES = {"image/png": "png", "image/svg+xml": "svg", "text/html": "html"}


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


class _Screen:
    """Writes to stdout/stderr and remembers which one has an unfinished line.

    Kernels often write without a final newline (``print(x, end='')``); our own notes (saved
    image paths, results, messages, tracebacks) must still start on a line of their own.
    The streams are looked up on each write, as test harnesses replace them.
    """

    def __init__(self) -> None:
        self.open = {"stdout": False, "stderr": False}
        #: Streams whose reader has gone (``kernel-mgmt run ... | head``): nothing more is
        #: written to them.
        self.closed: set[str] = set()
        #: Called (from any thread) when a stream's reader goes away: the run stops.
        self.on_broken_pipe: Callable[[], None] | None = None

    def write(self, name: str, text: str) -> None:
        if not text or name in self.closed:
            return
        stream = getattr(sys, name)
        try:
            stream.write(text)
            stream.flush()
        except BrokenPipeError:
            self._reader_gone(name, stream)
            return
        self.open[name] = not text.endswith("\n")

    def _reader_gone(self, name: str, stream: Any) -> None:
        # Point the stream at /dev/null, so that what is still buffered (and the
        # interpreter's final flush) goes nowhere instead of raising again.
        self.closed.add(name)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass  # not a real file (a test harness's stream): dropping writes is enough
        if self.on_broken_pipe is not None:
            self.on_broken_pipe()

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

    def kernel_line(self, type_id: str, info: Any) -> None:
        """The first ``--json`` line: which kernel runs and how it is reached (no keys)."""
        record = {
            "channel": "kernel",
            "msg_type": "kernel_started",
            "kernel_type": type_id,
            "transport": info.get("transport", "tcp"),
            "ip": info.get("ip"),
            # "curve" when the connection is CurveZMQ-encrypted, else null.
            "encryption": "curve" if info.get("curve_publickey") else None,
        }
        _screen.write("stdout", json.dumps(record) + "\n")

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


DEFAULT_OUTPUT_DIR = "kernel-mgmt-output"
