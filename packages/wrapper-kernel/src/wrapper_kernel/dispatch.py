"""What a kernel answers: the protocol semantics behind :class:`~wrapper_kernel.kernelbase.Kernel`.

Messaging spec 5.3: which reply, which IOPub messages, in which order. The socket loop
(:mod:`wrapper_kernel.server`) hands each verified request to :meth:`Dispatcher._dispatch_shell`
or :meth:`Dispatcher._dispatch_control` (the :class:`~wrapper_kernel.interface.RequestHandler`
interface) and knows nothing else of the kernel; the dispatcher answers through the session and
sockets of the :class:`~wrapper_kernel.interface.ServerHandle` it was connected to, and calls
the author's ``do_*`` methods, which :class:`~wrapper_kernel.kernelbase.Kernel` defines.

Imports only the standard library and ``kernel_mgmt.protocol`` (start-up cost);
``asyncio`` is imported by the first ``async def`` handler.
"""

from __future__ import annotations

import builtins
import contextlib
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kernel_mgmt.protocol import Message, Session

from .outstream import OutStream
from .stderr import warn as _warn

if TYPE_CHECKING:  # pragma: no cover
    import asyncio

    from .comms import CommManager
    from .interface import IOPubChannel, ServerHandle

__all__ = ["Dispatcher"]


def _error_content(exc: BaseException) -> dict[str, Any]:
    # Imported on the first error: a kernel's start-up never needs it.
    from .tracebacks import error_content

    return error_content(exc)


class Dispatcher:
    """The protocol side of a kernel; :class:`~wrapper_kernel.kernelbase.Kernel` adds the
    author's API. Everything here is private: authors override ``do_*`` methods only."""

    # Set by Kernel.__init__; the session and sockets come from _connect.
    session: Session
    iopub_socket: IOPubChannel
    stdin_socket: Any
    shell_socket: Any
    control_socket: Any
    execution_count: int
    _server: ServerHandle | None
    _parent: Message | None
    _allow_stdin: bool
    _payloads: list[dict[str, Any]]
    _loops: dict[int, asyncio.AbstractEventLoop]
    _kernel_info: dict[str, Any] | None
    _comm_manager: CommManager | None
    comm_manager: CommManager

    # -- the RequestHandler interface (called by the server) -----------------------------------

    def _connect(self, server: ServerHandle) -> None:
        """Take the session and sockets (the names ipykernel kernels use)."""
        self._server = server
        self.session = server.session
        self.iopub_socket = server.iopub
        self.stdin_socket = server.stdin_socket
        self.shell_socket = server.shell_socket
        self.control_socket = server.control_socket
        # From now on `comm.create_comm()` opens comms of this kernel (imports nothing yet).
        from .commhook import install

        install(self)  # type: ignore[arg-type]

    def _starting(self) -> None:
        # Spec ("Kernel status"): `starting` once, before the first request.
        self._publish("status", {"execution_state": "starting"}, {})

    def _abort_execute(self, msg: Message) -> None:
        """Answer an execute set aside by ``stop_on_error`` with status ``aborted``."""
        self._parent = msg
        self._publish_status("busy", msg)
        content = {"status": "aborted", "execution_count": self.execution_count}
        self._reply(self.shell_socket, msg, content)
        self._publish_status("idle", msg)

    # -- sending -------------------------------------------------------------------------------

    def _publish(self, msg_type: str, content: Mapping[str, Any], parent: Any = None) -> None:
        iopub = self.iopub_socket
        self.session.send(
            iopub,
            msg_type,
            content,
            parent=self._parent if parent is None else parent,
            idents=(iopub.topic(msg_type),),
        )

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
            # Spec ("Comm info"): the open comms, those of target_name if given.
            manager = self._comm_manager
            target = c.get("target_name")
            comms = manager.info(target if isinstance(target, str) else None) if manager else {}
            self._reply(socket, msg, {"status": "ok", "comms": comms})
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
        # Spec ("Custom Messages"): comm_open/comm_msg/comm_close go to the comm manager; a
        # comm_open to a target nobody registered is answered with comm_close.
        self.comm_manager.handle(msg)

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
