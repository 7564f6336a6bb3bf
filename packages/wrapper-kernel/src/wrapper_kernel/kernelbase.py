"""The class a kernel author subclasses: the seed's ``Kernel`` API and the protocol semantics.

This module holds *what* a kernel answers (messaging spec 5.3: which reply, which IOPub
messages, in which order); :mod:`wrapper_kernel.server` holds *how* messages move (sockets,
threads, signals). The split follows xeus: the server hands each verified request to
:meth:`Kernel._dispatch_shell` or :meth:`Kernel._dispatch_control`, and the kernel answers
through the session and the sockets the server attached.

Start-up cost matters (a frontend waits for the first ``kernel_info_reply``), so this module
imports only the standard library and ``kernel_mgmt.protocol``; ``logging``, ``asyncio`` and
``traceback`` are imported on first use.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from kernel_mgmt.protocol import PROTOCOL_VERSION, Message, Session

from ._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    import asyncio
    import logging

    from .server import KernelServer

__all__ = ["Kernel", "OutStream", "StdinNotImplementedError"]


class StdinNotImplementedError(NotImplementedError):
    """``input()``/``raw_input()`` was called but the request did not allow stdin.

    Frontends say whether they can answer ``input_request`` with ``allow_stdin`` on each
    ``execute_request`` (messaging spec, "Execute"); nbclient, for one, says no.
    """


def _warn(message: str) -> None:
    """Log to the kernel's stderr without importing ``logging`` (it costs start-up time)."""
    # sys.__stderr__: the process's stderr even while capture_output redirects sys.stderr.
    stream = sys.__stderr__ or sys.stderr
    try:
        stream.write(f"[wrapper_kernel] {message}\n")
        stream.flush()
    except (OSError, ValueError, AttributeError):  # closed or missing stderr: nothing to do
        pass


#: This package's own modules (the dispatcher, the server, the SIGINT handler); the shipped
#: examples live in a subfolder and count as author code.
_HERE = os.path.dirname(os.path.abspath(__file__))
#: The standard library's folder: asyncio frames that run an ``async def`` handler are ours.
_STDLIB = os.path.dirname(os.path.abspath(os.__file__))
_LOOP_FILES = (os.path.join(_STDLIB, "asyncio") + os.sep, os.path.join(_STDLIB, "selectors.py"))


def _is_machinery(filename: str) -> bool:
    return os.path.dirname(os.path.abspath(filename)) == _HERE


def _author_frames(stack: list[Any]) -> list[Any]:
    """The frames of ``stack`` that show the author's code, in order.

    Dropped: the leading frames of our dispatcher (and the asyncio loop running an
    ``async def`` handler) that called the author's method, and everything from the first
    frame of our machinery that the author's code called onwards: ``raw_input``/``input()``
    waiting on stdin, the SIGINT handler that raised ``KeyboardInterrupt``, ``send_response``.
    The traceback then ends at the author's line, as it would in plain Python.
    """
    i = 0
    while i < len(stack) and (
        _is_machinery(stack[i].filename) or stack[i].filename.startswith(_LOOP_FILES)
    ):
        i += 1
    kept = []
    for frame in stack[i:]:
        if _is_machinery(frame.filename):
            break
        kept.append(frame)
    return kept


def _format_exception(exc: BaseException) -> list[str]:
    """Traceback lines for an ``error`` message, showing the author's frames only.

    Chained exceptions (``__cause__``, ``__context__``) are trimmed the same way.
    """
    import traceback

    te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    todo, seen = [te], set()
    while todo:
        t = todo.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        t.stack = traceback.StackSummary.from_list(_author_frames(list(t.stack)))
        todo.extend(x for x in (t.__cause__, t.__context__) if x is not None)
        todo.extend(getattr(t, "exceptions", None) or ())  # ExceptionGroup members
    return [line.rstrip("\n") for line in te.format() if line]


def _error_content(exc: BaseException) -> dict[str, Any]:
    return {
        "status": "error",
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": _format_exception(exc),
    }


class OutStream(io.TextIOBase):
    """A text file whose writes become IOPub ``stream`` messages (``stdout`` or ``stderr``).

    Line-buffered: text is sent at each newline, on :meth:`flush`, and when the request ends,
    so ``print("a")`` is one message, not two. Redirect ``sys.stdout`` to one (or set
    :attr:`Kernel.capture_output`) to turn ``print`` in a Python-evaluating kernel into output.
    """

    def __init__(self, kernel: Kernel, name: str = "stdout") -> None:
        super().__init__()
        self._kernel = kernel
        self.name = name
        self._buffer: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            self._buffer.append(text)
            if "\n" in text:
                self.flush()
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            text = "".join(self._buffer)
            self._buffer.clear()
            self._kernel.send_stream(text, self.name)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def isatty(self) -> bool:
        return False


class Kernel:
    """Base class for kernels: override ``do_execute`` (and optionally the other ``do_*``).

    Class attributes describe the kernel in ``kernel_info_reply`` exactly as in ipykernel's
    ``Kernel``; ``display_name``, ``kernel_name`` and ``interrupt_mode`` are used by the
    ``install`` command. Every ``do_*`` method may be ``def`` or ``async def``.
    """

    # -- what kernel_info_reply says (the seed's attributes) --------------------------------
    implementation: ClassVar[str] = "wrapper_kernel"
    implementation_version: ClassVar[str] = __version__
    language: ClassVar[str] = ""
    language_version: ClassVar[str] = ""
    language_info: ClassVar[dict[str, Any]] = {}
    banner: ClassVar[str] = ""
    help_links: ClassVar[list[dict[str, str]]] = []

    # -- what `python -m mykernel install` writes -------------------------------------------
    #: Shown in the frontend's kernel picker; defaults to ``implementation``.
    display_name: ClassVar[str | None] = None
    #: The kernelspec folder name; defaults to the module name.
    kernel_name: ClassVar[str | None] = None
    #: ``signal`` (SIGINT) or ``message`` (``interrupt_request``): this kernel handles both.
    interrupt_mode: ClassVar[str] = "signal"

    #: Route ``sys.stdout``/``sys.stderr`` to IOPub ``stream`` messages while ``do_execute``
    #: runs (what a kernel evaluating Python wants; off by default as in the seed).
    capture_output: ClassVar[bool] = False

    # Attached by the server before the first request (see KernelServer.attach).
    session: Session
    iopub_socket: Any
    stdin_socket: Any
    shell_socket: Any
    control_socket: Any

    def __init__(self, **kwargs: Any) -> None:
        # ipykernel kernels call super().__init__(**kwargs); accept and keep what they pass.
        for name, value in kwargs.items():
            setattr(self, name, value)
        #: Incremented by the base before ``do_execute`` for requests that store history.
        self.execution_count: int = 0
        self._server: KernelServer | None = None
        self._parent: Message | None = None
        self._allow_stdin = False
        self._payloads: list[dict[str, Any]] = []
        self._loops: dict[int, asyncio.AbstractEventLoop] = {}
        self._warned: set[str] = set()
        self._kernel_info: dict[str, Any] | None = None
        self._log: logging.Logger | None = None

    # -- start-up -----------------------------------------------------------------------------

    @classmethod
    def launch_instance(cls, argv: list[str] | None = None, **kwargs: Any) -> None:
        """Run this kernel: ``-f CONNECTION_FILE``, or ``install [...]`` to install its spec."""
        from .kernelapp import KernelApp

        KernelApp.launch_instance(argv=argv, kernel_class=cls, **kwargs)

    @property
    def log(self) -> logging.Logger:
        """A ``logging`` logger for author code (imported on first use, writes to stderr)."""
        if self._log is None:
            import logging

            self._log = logging.getLogger(f"wrapper_kernel.{type(self).__name__}")
            if not logging.getLogger().handlers:
                logging.basicConfig(format="[%(name)s] %(levelname)s %(message)s")
        return self._log

    # -- the methods an author overrides (seed signatures, seed defaults) -----------------------

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
    ) -> dict[str, Any]:
        """Execute ``code``; return the ``execute_reply`` content. Override this."""
        raise NotImplementedError(f"{type(self).__name__} does not implement do_execute()")

    def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        """Completion at ``cursor_pos``; the default offers no matches."""
        return {
            "status": "ok",
            "matches": [],
            "cursor_start": cursor_pos,
            "cursor_end": cursor_pos,
            "metadata": {},
        }

    def do_inspect(self, code: str, cursor_pos: int, detail_level: int = 0) -> dict[str, Any]:
        """Introspection at ``cursor_pos``; the default finds nothing."""
        return {"status": "ok", "data": {}, "metadata": {}, "found": False}

    def do_history(
        self,
        hist_access_type: str,
        output: bool,
        raw: bool,
        session: int | None = None,
        start: int | None = None,
        stop: int | None = None,
        n: int | None = None,
        pattern: str | None = None,
        unique: bool = False,
    ) -> dict[str, Any]:
        """History access; the default keeps none."""
        return {"status": "ok", "history": []}

    def do_is_complete(self, code: str) -> dict[str, Any]:
        """Whether ``code`` is ready to run; the default does not know."""
        return {"status": "unknown"}

    def do_shutdown(self, restart: bool) -> dict[str, Any]:
        """Release the kernel's own resources; the sockets are the base's job."""
        return {"status": "ok", "restart": restart}

    # -- sending (the seed's API and small helpers) -------------------------------------------

    def send_response(
        self,
        stream: Any,
        msg_or_type: str | Mapping[str, Any],
        content: Mapping[str, Any] | None = None,
        ident: list[bytes] | bytes | None = None,
        buffers: list[Any] | None = None,
        track: bool = False,
        header: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        channel: str | None = None,
    ) -> Message:
        """Send a message on ``stream`` (usually ``self.iopub_socket``), child of the request."""
        if isinstance(msg_or_type, str) and content is not None:
            content = self._fix_seed_content(msg_or_type, content)
        if ident is None:
            if stream is self.iopub_socket and isinstance(msg_or_type, str):
                idents = [self.iopub_socket.topic(msg_or_type)]
            else:
                idents = self._parent.idents if self._parent is not None else []
        else:
            idents = [ident] if isinstance(ident, bytes) else list(ident)
        return self.session.send(
            stream,
            msg_or_type,
            content,
            parent=self._parent,
            idents=idents,
            buffers=buffers,
            metadata=metadata,
            header=header,
        )

    def get_parent(self, channel: str | None = None) -> dict[str, Any]:
        """The request being handled (as ipykernel's ``get_parent``): ``{}`` when idle."""
        return self._parent if self._parent is not None else {}

    def _fix_seed_content(self, msg_type: str, content: Mapping[str, Any]) -> Mapping[str, Any]:
        """Repair the two mistakes in the seed's plot kernel, with one warning each.

        * ``stream`` content carries its text under ``text`` (spec 5.0); the seed used ``data``,
          which frontends silently ignore.
        * ``image/png`` is plain base64; the seed URL-quoted it (``%2B`` for ``+``), which no
          frontend decodes. Base64 never contains ``%``, so a ``%`` means quoted.
        """
        if msg_type == "stream":
            if "text" not in content and "data" in content:
                self._warn_once("stream-data", "stream content uses 'data'; the key is 'text'")
                fixed = {k: v for k, v in content.items() if k != "data"}
                fixed["text"] = content["data"]
                return fixed
        elif msg_type in ("display_data", "execute_result", "update_display_data"):
            data = content.get("data")
            png = data.get("image/png") if isinstance(data, Mapping) else None
            if isinstance(png, str) and "%" in png:
                from urllib.parse import unquote

                self._warn_once("png-quoted", "image/png is URL-quoted; send plain base64")
                return {**content, "data": {**data, "image/png": unquote(png)}}
        return content

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _warn(message)

    def send_stream(self, text: str, name: str = "stdout") -> None:
        """Send ``text`` to the frontend's ``stdout`` or ``stderr`` output."""
        self._publish("stream", {"name": name, "text": text})

    def print(self, *objects: Any, sep: str = " ", end: str = "\n", stream: str = "stdout") -> None:
        """``print()`` to the frontend: one ``stream`` message."""
        self.send_stream(sep.join(map(str, objects)) + end, stream)

    def display(
        self,
        data: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        display_id: str | None = None,
        update: bool = False,
    ) -> None:
        """Show a mime bundle (``{"text/plain": ..., "image/png": <base64>}``) as ``display_data``.

        With ``display_id`` the output can later be replaced by calling again with ``update=True``.
        """
        if update and not display_id:
            # Spec ("Update Display Data"): the update names the output it replaces.
            raise ValueError("display(update=True) needs the display_id of the output to update")
        content: dict[str, Any] = {"data": dict(data), "metadata": dict(metadata or {})}
        content["transient"] = {"display_id": display_id} if display_id else {}
        self._publish("update_display_data" if update else "display_data", content)

    def execute_result(
        self, data: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Publish the value of the cell (``Out[n]``) as ``execute_result``."""
        self._publish(
            "execute_result",
            {
                "execution_count": self.execution_count,
                "data": dict(data),
                "metadata": dict(metadata or {}),
            },
        )

    def clear_output(self, wait: bool = False) -> None:
        """Clear the cell's output (``wait``: when the next output arrives)."""
        self._publish("clear_output", {"wait": wait})

    def page(self, data: str | Mapping[str, Any], start: int = 0) -> None:
        """Show ``data`` in the frontend's pager (a ``page`` payload on this execute_reply)."""
        bundle = {"text/plain": data} if isinstance(data, str) else dict(data)
        self._payloads.append({"source": "page", "data": bundle, "start": start})

    def _publish(self, msg_type: str, content: Mapping[str, Any], parent: Any = None) -> None:
        iopub = self.iopub_socket
        self.session.send(
            iopub,
            msg_type,
            content,
            parent=self._parent if parent is None else parent,
            idents=(iopub.topic(msg_type),),
        )

    # -- stdin ----------------------------------------------------------------------------------

    def raw_input(self, prompt: str = "") -> str:
        """Ask the frontend for a line of input (``input_request`` on the stdin channel)."""
        return self._input_request(str(prompt), password=False)

    def getpass(self, prompt: str = "", stream: Any = None) -> str:
        """Like :meth:`raw_input`, but the frontend hides what is typed."""
        return self._input_request(str(prompt), password=True)

    def _input_request(self, prompt: str, password: bool) -> str:
        if not self._allow_stdin or self._server is None or self._parent is None:
            raise StdinNotImplementedError(
                "input was requested, but this frontend does not support input requests "
                "(the execute_request had allow_stdin=False)"
            )
        # Flush pending output first so the prompt appears after it.
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, OutStream):
                stream.flush()
        return self._server.input_request(prompt, password, self._parent)

    # -- async support -----------------------------------------------------------------------

    def _resolve(self, result: Any) -> Any:
        """Run an ``async def`` handler's coroutine to completion on this thread's loop."""
        if not hasattr(result, "__await__"):
            return result
        import asyncio
        import threading

        key = threading.get_ident()
        loop = self._loops.get(key)
        if loop is None or loop.is_closed():
            loop = self._loops[key] = asyncio.new_event_loop()
        task = loop.create_task(_await(result))
        try:
            return loop.run_until_complete(task)
        except KeyboardInterrupt:
            # The interrupt hit the loop itself (e.g. in select): cancel the author's task
            # so the next request starts clean, then report the interrupt.
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(task)
            raise

    # -- protocol: dispatch (called by the server) -----------------------------------------------

    def _kernel_info_content(self) -> dict[str, Any]:
        if self._kernel_info is None:
            language_info = {
                "name": self.language,
                "version": self.language_version,
                "mimetype": "text/plain",
                "file_extension": ".txt",
            }
            language_info.update(self.language_info or {})
            self._kernel_info = {
                "status": "ok",
                "protocol_version": PROTOCOL_VERSION,
                "implementation": self.implementation,
                "implementation_version": self.implementation_version,
                "language_info": language_info,
                "banner": self.banner,
                "help_links": list(self.help_links or []),
                # Only what is real: no debugger, no subshells (a frontend that believes in a
                # debugger sends debug_request and waits for replies that never come).
                "debugger": False,
                "supported_features": [],
            }
        return self._kernel_info

    def _publish_status(self, state: str, parent: Message) -> None:
        self._publish("status", {"execution_state": state}, parent)
        if state == "idle":
            # Our sends may have consumed IOPub's readiness edge: look for subscriptions now,
            # so a client that subscribed during this request gets its iopub_welcome.
            check = getattr(self.iopub_socket, "check_subscriptions", None)
            if check is not None:
                check()

    def _dispatch_shell(self, msg: Message) -> None:
        """Handle one shell request: busy, reply, idle (spec: "Kernel status")."""
        self._parent = msg
        msg_type = msg.msg_type
        self._publish_status("busy", msg)
        try:
            if msg_type == "execute_request":
                self._execute_request(msg)
            elif msg_type == "shutdown_request":
                self._shutdown_request(msg, self.shell_socket)
            else:
                self._simple_request(msg, self.shell_socket, control=False)
        except Exception as e:  # a bug in a reply path must never kill the kernel
            _warn(f"error handling {msg_type}: {type(e).__name__}: {e}")
        finally:
            self._publish_status("idle", msg)

    def _dispatch_control(self, msg: Message) -> None:
        """Handle one control request (runs on the control thread, beside a busy shell)."""
        msg_type = msg.msg_type
        self._publish_status("busy", msg)
        try:
            if msg_type == "shutdown_request":
                self._shutdown_request(msg, self.control_socket)
            else:
                self._simple_request(msg, self.control_socket, control=True)
        except Exception as e:
            _warn(f"error handling {msg_type} on control: {type(e).__name__}: {e}")
        finally:
            self._publish_status("idle", msg)

    def _reply(self, socket: Any, msg: Message, content: Mapping[str, Any]) -> None:
        reply_type = msg.msg_type.rpartition("_")[0] + "_reply"
        try:
            self.session.send(socket, reply_type, content, parent=msg, idents=msg.idents)
        except (TypeError, ValueError) as e:
            # The author's reply is not JSON: the client must still get a reply, or it waits
            # forever. Report the problem as an error reply instead.
            error = {
                "status": "error",
                "ename": type(e).__name__,
                "evalue": f"{type(self).__name__} returned a {reply_type} that is not JSON: {e}",
                "traceback": [],
            }
            self.session.send(socket, reply_type, error, parent=msg, idents=msg.idents)

    def _simple_request(self, msg: Message, socket: Any, control: bool) -> None:
        msg_type = msg.msg_type
        c = msg.content
        if msg_type == "kernel_info_request":
            self._reply(socket, msg, self._kernel_info_content())
            return
        if msg_type == "interrupt_request":
            if self._server is not None:
                self._server.interrupt()
            self._reply(socket, msg, {"status": "ok"})
            return
        if control:
            # Control carries kernel_info, interrupt and shutdown; we advertise nothing else
            # (no debugger), so anything more gets busy/idle and no reply.
            _warn(f"unsupported message type {msg_type!r} on control; ignored")
            return
        if msg_type in ("comm_open", "comm_msg", "comm_close"):
            self._comm_message(msg)
            return
        if msg_type == "comm_info_request":
            self._reply(socket, msg, {"status": "ok", "comms": {}})
            return
        call: Callable[[], Any]
        if msg_type == "complete_request":
            code = c.get("code", "")
            pos = c.get("cursor_pos", len(code))

            def call() -> Any:
                return self.do_complete(code, pos)
        elif msg_type == "inspect_request":
            code = c.get("code", "")
            pos = c.get("cursor_pos", len(code))

            def call() -> Any:
                return self.do_inspect(code, pos, c.get("detail_level", 0))
        elif msg_type == "history_request":
            args = {k: c[k] for k in _HISTORY_ARGS if k in c}

            def call() -> Any:
                return self.do_history(
                    c.get("hist_access_type", "tail"),
                    c.get("output", False),
                    c.get("raw", True),
                    **args,
                )
        elif msg_type == "is_complete_request":

            def call() -> Any:
                return self.do_is_complete(c.get("code", ""))
        else:
            _warn(f"unknown message type {msg_type!r}; ignored")
            return
        try:
            reply = self._resolve(call())
            if reply is None:
                reply = {"status": "ok"}
        except BaseException as e:  # incl. KeyboardInterrupt, asyncio.CancelledError
            reply = _error_content(e)
        self._reply(socket, msg, reply)

    def _comm_message(self, msg: Message) -> None:
        # We host no comm targets: per spec ("Opening a Comm") an unknown target_name is
        # answered with comm_close so the frontend does not wait on a comm that will not exist.
        if msg.msg_type == "comm_open":
            comm_id = msg.content.get("comm_id", "")
            self._publish("comm_close", {"comm_id": comm_id, "data": {}})

    def _shutdown_request(self, msg: Message, socket: Any) -> None:
        restart = bool(msg.content.get("restart", False))
        try:
            reply = self._resolve(self.do_shutdown(restart))
        except BaseException as e:
            _warn(f"do_shutdown raised {type(e).__name__}: {e}")
            reply = None
        reply = dict(reply) if isinstance(reply, Mapping) else {}
        reply.setdefault("status", "ok")
        reply["restart"] = restart  # the reply echoes the request's restart flag
        try:
            self._reply(socket, msg, reply)
        finally:
            if self._server is not None:
                self._server.stop()

    def _execute_request(self, msg: Message) -> None:
        c = msg.content
        code = c.get("code", "")
        if not isinstance(code, str):
            code = str(code)
        silent = bool(c.get("silent", False))
        # Spec: silent forces store_history False; only stored executions count.
        store_history = bool(c.get("store_history", not silent)) and not silent
        user_expressions = c.get("user_expressions") or {}
        allow_stdin = bool(c.get("allow_stdin", False))
        stop_on_error = bool(c.get("stop_on_error", True))

        server = self._server
        if server is not None:
            server.executing = True
            server.interrupt_pending = False
        try:
            self._execute(
                msg, code, silent, store_history, user_expressions, allow_stdin, stop_on_error
            )
        finally:
            if server is not None:
                server.executing = False
                server.interrupt_pending = False

    def _execute(
        self,
        msg: Message,
        code: str,
        silent: bool,
        store_history: bool,
        user_expressions: dict[str, Any],
        allow_stdin: bool,
        stop_on_error: bool,
    ) -> None:
        if store_history:
            self.execution_count += 1
        if not silent:
            self._publish("execute_input", {"code": code, "execution_count": self.execution_count})

        self._allow_stdin = allow_stdin
        self._payloads = []
        server = self._server
        saved_input = builtins.input
        builtins.input = self.raw_input
        # `getpass.getpass()` in user code must ask the frontend too: the real one reads the
        # kernel's own stdin and would block forever. Imported here (first execute), not at
        # start-up.
        getpass_mod = sys.modules.get("getpass")
        if getpass_mod is None:
            import getpass as getpass_mod
        saved_getpass = getpass_mod.getpass
        getpass_mod.getpass = self.getpass  # type: ignore[assignment]
        saved_std = None
        if self.capture_output:
            saved_std = sys.stdout, sys.stderr
            sys.stdout, sys.stderr = OutStream(self, "stdout"), OutStream(self, "stderr")
        reply: Any
        try:
            # SIGINT raises KeyboardInterrupt only while this flag is set (server.interrupt and
            # the SIGINT handler): an idle kernel survives the SIGINT a manager sends.
            if server is not None:
                server.in_user_code = True
            try:
                if server is not None and server.interrupt_pending:
                    raise KeyboardInterrupt
                reply = self._resolve(
                    self.do_execute(code, silent, store_history, user_expressions, allow_stdin)
                )
            finally:
                if server is not None:
                    server.in_user_code = False
        # BaseException: KeyboardInterrupt (the interrupt), SystemExit, and CancelledError
        # out of async code are all the author's errors; none may kill the kernel.
        except BaseException as e:
            reply = _error_content(e)
            if saved_std is not None:
                sys.stdout.flush()
                sys.stderr.flush()
            # Spec ("Execution errors"): the traceback goes to IOPub as `error` as well.
            err = {k: reply[k] for k in ("ename", "evalue", "traceback")}
            self._publish("error", err)
        finally:
            if saved_std is not None:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    sys.stdout, sys.stderr = saved_std
            builtins.input = saved_input
            getpass_mod.getpass = saved_getpass  # type: ignore[assignment]
            self._allow_stdin = False

        if reply is None:
            reply = {"status": "ok"}
        elif not isinstance(reply, Mapping):
            reply = _error_content(
                TypeError(f"do_execute must return a dict, not {type(reply).__name__}")
            )
        reply = dict(reply)
        status = reply.setdefault("status", "ok")
        reply.setdefault("execution_count", self.execution_count)
        if status == "ok":
            payload = reply.get("payload") or []
            reply["payload"] = [*payload, *self._payloads]
            reply.setdefault("user_expressions", {})
        elif status == "error":
            reply.setdefault("ename", "Error")
            reply.setdefault("evalue", "")
            reply.setdefault("traceback", [])
        self._payloads = []
        if status == "error" and stop_on_error and server is not None:
            server.take_queued()
        self._reply(self.shell_socket, msg, reply)


async def _await(awaitable: Any) -> Any:
    return await awaitable


_HISTORY_ARGS = ("session", "start", "stop", "n", "pattern", "unique")
