"""``execute_interactive``: run code, show its output, answer its input requests.

The output hook prints IOPub output as jupyter_client does (or, inside an IPython kernel,
displays rich output there); the stdin hook answers ``input_request`` with ``input()`` /
``getpass()`` on a terminal, or with a line read from stdin's fd (never under stdin's lock, so
a prompt left waiting at exit cannot abort the interpreter).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import getpass
import inspect
import io
import logging
import os
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

from kernel_mgmt.protocol import Message

__all__ = [
    "Interactive",
    "default_output_hook",
    "output_hook_for_environment",
    "run_in_daemon_thread",
]

log = logging.getLogger("kernel_mgmt.client")


def run_in_daemon_thread(func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """Run a blocking call (``input()``) in a daemon thread; await its result.

    Not the default executor: its threads are joined at interpreter exit, so a prompt
    left waiting for a dead kernel would block the exit.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()

    def set_result(ok: bool, value: Any) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def target() -> None:
        try:
            value = func(*args)
        except BaseException as e:
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(set_result, False, e)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(set_result, True, value)

    threading.Thread(target=target, name="kernel-mgmt-input", daemon=True).start()
    return fut


def default_output_hook(msg: Message) -> None:
    """Print an IOPub output as jupyter_client does: streams, text/plain results, tracebacks."""
    msg_type = msg.msg_type
    content = msg.content
    if msg_type == "stream":
        stream = sys.stderr if content.get("name") == "stderr" else sys.stdout
        stream.write(content.get("text", ""))
        stream.flush()
    elif msg_type in ("display_data", "execute_result"):
        text = content.get("data", {}).get("text/plain")
        if text is not None:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            sys.stdout.flush()
    elif msg_type == "error":
        sys.stderr.write("\n".join(content.get("traceback", [])) + "\n")
        sys.stderr.flush()


def output_hook_for_environment() -> Callable[[Message], None]:
    """The default output hook: inside an IPython kernel (a notebook cell), rich outputs go to
    that kernel's own display, as jupyter_client does; elsewhere :func:`default_output_hook`.
    """
    if "IPython" not in sys.modules:
        return default_output_hook
    try:
        from IPython import get_ipython

        ip = get_ipython()
        display_pub = ip.display_pub if getattr(ip, "kernel", None) is not None else None
    except Exception:
        display_pub = None
    if display_pub is None:
        return default_output_hook

    def hook(msg: Message) -> None:
        if msg.msg_type in ("display_data", "execute_result"):
            content = msg.content
            display_pub.publish(data=content.get("data", {}), metadata=content.get("metadata"))
        else:
            default_output_hook(msg)

    return hook


def _stdin_fd_if_not_terminal() -> int | None:
    """The fd of ``sys.stdin`` when ``input()`` would read it through its buffered object.

    ``input()`` reads with line editing (``PyOS_Readline``, no Python-level lock) only when
    stdin and stdout are both the process's terminal; otherwise it calls
    ``sys.stdin.readline()``, which holds the BufferedReader's lock while it blocks. Our
    prompts run in a daemon thread, and a thread still holding that lock at interpreter exit
    aborts it ("Fatal Python error: _enter_buffered_busy"). None: ``input()`` is safe (a
    terminal, or a replaced ``input``/``sys.stdin`` such as an IPython kernel's or a test's).
    """
    if not isinstance(builtins.input, types.BuiltinFunctionType):
        return None  # replaced (an IPython kernel forwards it to its frontend): use it
    stdin, stdout = sys.stdin, sys.stdout
    try:
        fd = stdin.fileno()
        if not isinstance(stdin, io.TextIOWrapper):
            return None  # not a real file (io.StringIO in tests, a GUI's replacement)
        on_terminal = fd == 0 and os.isatty(0) and stdout is not None and stdout.fileno() == 1
        if on_terminal and os.isatty(1):
            return None  # PyOS_Readline: the terminal path, no buffered lock
    except (AttributeError, ValueError, OSError):
        return None
    return fd


def _read_line_from_fd(fd: int, encoding: str, errors: str) -> str:
    """Read one line from *fd* without ``sys.stdin``'s lock; EOFError at end of input.

    One byte at a time, so nothing past the newline is consumed: the next prompt (or a
    later reader of stdin) gets the following lines. Like ``input()``, the newline is
    stripped and a last line without one is returned as it is.
    """
    data = bytearray()
    while True:
        try:
            b = os.read(fd, 1)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; belt and braces
            continue
        if not b:
            if not data:
                raise EOFError
            break
        if b == b"\n":
            break
        data += b
    text = data.decode(encoding, errors)
    return text[:-1] if text.endswith("\r") else text


def _prompt_user(prompt: str, password: bool) -> str:
    """Ask the user (in a daemon thread); EOF becomes the EOF character, as jupyter_client does.

    On a terminal: ``input()`` (line editing) or ``getpass()``. Otherwise (stdin a pipe or a
    file) the prompt goes to stdout and the answer is read from stdin's fd directly, so a
    prompt still waiting at exit (Ctrl-C, a dead kernel) cannot abort the interpreter.
    """
    try:
        fd = _stdin_fd_if_not_terminal()
        if fd is None:
            return getpass.getpass(prompt) if password else input(prompt)
        if password and os.isatty(fd):
            # getpass reads /dev/tty through its own unbuffered file, never sys.stdin's.
            return getpass.getpass(prompt)
        sys.stdout.write(prompt)
        sys.stdout.flush()
        return _read_line_from_fd(
            fd, sys.stdin.encoding or "utf-8", getattr(sys.stdin, "errors", None) or "strict"
        )
    except EOFError:
        return "\x04"


class Interactive:
    """:meth:`execute_interactive`, on top of the client's requests and handlers."""

    _closed: bool
    _check_usable: Callable[[], asyncio.AbstractEventLoop]
    execute: Callable[..., Any]
    input: Callable[..., Any]
    add_handler: Callable[..., Any]
    remove_handler: Callable[..., Any]
    wait_for_idle: Callable[..., Any]

    async def execute_interactive(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
        timeout: float | None = None,
        output_hook: Callable[[Message], Any] | None = None,
        stdin_hook: Callable[[Message], Any] | None = None,
        interrupt_timeout: float | None = None,
        idle_timeout: float | None = 4.0,
        raise_on_no_idle: bool = False,
    ) -> Message:
        """Execute *code*, showing its output and answering its input requests.

        *output_hook(msg)* is called for every IOPub message of this request (default:
        print streams, text/plain results and tracebacks like jupyter_client; inside a
        notebook, rich results are displayed in it).
        *stdin_hook(msg)* answers input_request messages: it may return the answer (a str,
        or an awaitable giving one) or call :meth:`input` itself; default: ``input()`` /
        ``getpass()`` on a terminal, else a line read from stdin (at EOF the answer is
        ``"\\x04"``). Returns the execute_reply after the request's IOPub idle (waited for
        up to *idle_timeout*); TimeoutError after *timeout* seconds.
        """
        loop = self._check_usable()
        if output_hook is None:
            output_hook = output_hook_for_environment()
        holder: dict[str, str] = {}
        stdin_tasks: set[asyncio.Task[Any]] = set()

        def on_iopub(msg: Message) -> None:
            if msg.parent_header.get("msg_id") == holder.get("id"):
                output_hook(msg)

        async def answer(msg: Message) -> None:
            try:
                if stdin_hook is None:
                    c = msg.content
                    value = await run_in_daemon_thread(
                        _prompt_user, c.get("prompt", ""), bool(c.get("password"))
                    )
                else:
                    value = stdin_hook(msg)
                    if inspect.isawaitable(value):
                        value = await value
                if isinstance(value, str) and not self._closed:
                    self.input(value, parent=msg)
            except KeyboardInterrupt:
                sys.stdout.write("\n")
            except Exception:
                log.exception("stdin hook failed")

        def on_stdin(msg: Message) -> None:
            if msg.msg_type == "input_request" and msg.parent_header.get("msg_id") == holder.get(
                "id"
            ):
                t = loop.create_task(answer(msg))
                stdin_tasks.add(t)
                t.add_done_callback(stdin_tasks.discard)

        self.add_handler(on_iopub, "iopub")
        self.add_handler(on_stdin, "stdin")
        try:
            fut = self.execute(
                code,
                silent=silent,
                store_history=store_history,
                user_expressions=user_expressions,
                allow_stdin=allow_stdin,
                stop_on_error=stop_on_error,
                interrupt_timeout=interrupt_timeout,
            )
            holder["id"] = fut.jupyter_msg_id
            try:
                reply = await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                raise TimeoutError(f"no execute_reply within {timeout} s") from None
            ok = await self.wait_for_idle(fut.jupyter_msg_id, idle_timeout)
            if not ok and raise_on_no_idle:
                raise TimeoutError(f"no IOPub idle status within {idle_timeout} s")
            return reply
        finally:
            self.remove_handler(on_iopub)
            self.remove_handler(on_stdin)
            for t in stdin_tasks:
                t.cancel()
