"""The socket loop that carries a kernel's messages.

It knows the kernel only as a :class:`~wrapper_kernel.interface.RequestHandler` (five
methods it calls) and offers itself as the :class:`~wrapper_kernel.interface.ServerHandle`
the kernel calls back; sockets and frames are :mod:`wrapper_kernel.channels`, the watch on the
launching process is :mod:`wrapper_kernel.parentwatch`.

Threads (3 Python threads, plus libzmq's own I/O and reaper threads):

* **main** polls shell (and, inside ``raw_input``, stdin) and runs the author's ``do_*``
  methods. It must be the main thread: Python delivers signals there only, and SIGINT has
  to become ``KeyboardInterrupt`` inside ``do_execute``.
* **control** polls the control socket, so ``kernel_info``, ``interrupt`` and ``shutdown``
  are answered within milliseconds while ``do_execute`` runs. It also answers IOPub
  subscriptions with ``iopub_welcome``, makes sure every SIGINT reaches ``do_execute``
  (see ``_check_interrupt``) and watches the parent process.
* **heartbeat** echoes pings with ``zmq.proxy``: C code without the GIL, so pings are answered
  even while the author's code holds the GIL.

There is no asyncio loop and no inproc hop on the hot path: a request is received, handled and
replied to on one thread, directly on the sockets. IOPub is shared by main and control, so
every IOPub operation takes one lock (uncontended: ~0.1 µs).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import zmq

from kernel_mgmt.protocol import Message, ProtocolError, Session

from .channels import (
    _NOBLOCK,
    FastSocket,
    IOPubSocket,
    KernelStartupError,
    bind_channels,
    recv_frames,
    send_frames,
)
from .interrupts import SigintHandling
from .stderr import warn as _warn

if TYPE_CHECKING:  # pragma: no cover
    from .interface import RequestHandler

# FastSocket, IOPubSocket, send_frames, recv_frames: defined in channels since the split,
# importable from here as before.
__all__ = [
    "FastSocket",
    "IOPubSocket",
    "KernelServer",
    "KernelStartupError",
    "recv_frames",
    "send_frames",
]


class KernelServer(SigintHandling):
    """Binds the five channels of a connection file and serves one kernel on them."""

    #: How long a stopping kernel waits for the running ``do_execute`` before exiting anyway.
    shutdown_grace = 2.0
    #: Poll interval for the parent check where ``pidfd_open`` is unavailable.
    parent_poll_ms = 1000
    #: How long input() waits for a client's stdin connection to be routable.
    stdin_connect_timeout = 5.0

    def __init__(self, connection_info: dict[str, Any], connection_file: str | None = None):
        self.info = dict(connection_info)
        self.connection_file = connection_file
        key = self.info.get("key") or ""
        try:
            self.session = Session(
                key=key,
                signature_scheme=self.info.get("signature_scheme") or "hmac-sha256",
                username=os.environ.get("USER") or "kernel",
            )
        except (ValueError, UnicodeError) as e:
            where = f" in {connection_file}" if connection_file else ""
            raise KernelStartupError(f"bad key or signature_scheme{where}: {e}") from None
        self.kernel: RequestHandler | None = None
        #: True from the start of an execute_request to its reply; an interrupt in that window
        #: before the author's code runs is kept (interrupt_pending) rather than lost.
        self.executing = False
        #: True while the author's do_execute runs: SIGINT raises KeyboardInterrupt there.
        self.in_user_code = False
        self.interrupt_pending = False
        self._stopping = False
        self._fds_closed = False
        self._main_done = threading.Event()
        self._control_done = threading.Event()
        self._pending: deque[Message] = deque()
        self._to_abort: deque[Message] = deque()
        self._wake_r, self._wake_w = os.pipe()  # wakes the main thread's poll
        self._cwake_r, self._cwake_w = os.pipe()  # wakes the control thread's poll
        self._init_sigint()
        #: The process that launched us, noted before binding: if it dies before the control
        #: thread watches it, we are reparented and getppid() no longer names it.
        self.parent_pid = os.getppid()
        self.ctx = zmq.Context()
        try:
            self.shell, self.control, self.stdin, self.iopub, self.hb = bind_channels(
                self.ctx, self.info, self.session, connection_file
            )
        except BaseException:
            # Release what we opened: an embedding program may retry with other ports.
            self.ctx.destroy(linger=0)
            for fd in (self._wake_r, self._wake_w, self._cwake_r, self._cwake_w):
                os.close(fd)
            os.close(self._sig_r)
            os.close(self._sig_w)
            raise
        # The reply sockets the kernel sends on (ServerHandle): fast send_multipart.
        self.shell_socket = FastSocket(self.shell)
        self.control_socket = FastSocket(self.control)
        self.stdin_socket = FastSocket(self.stdin)

    def attach(self, kernel: RequestHandler) -> None:
        """Serve ``kernel``: it takes the session and sockets (``_connect``)."""
        self.kernel = kernel
        kernel._connect(self)

    # -- running --------------------------------------------------------------------------------

    def serve(self) -> None:
        """Serve until shutdown; must run on the main thread (signal delivery)."""
        if self.kernel is None:
            raise RuntimeError("KernelServer.serve() needs a kernel: call attach() first")
        on_main = threading.current_thread() is threading.main_thread()
        # Threads inherit the signal mask: block SIGINT while starting them so it is only ever
        # delivered to the main thread, where it interrupts a blocking call (sleep, poll).
        if on_main:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
            threading.Thread(target=self._control_loop, name="control", daemon=True).start()
        finally:
            if on_main:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        if not on_main:
            # Signals reach the main thread only: without it there are no interrupts (and we
            # must not signal the host program's main thread).
            self._main_ident = None
            _warn("not serving on the main thread: interrupts are disabled")
        if on_main:
            signal.signal(signal.SIGINT, self._on_sigint)
            signal.set_wakeup_fd(self._sig_w, warn_on_full_buffer=False)
        self.kernel._starting()
        try:
            self._main_loop()
        finally:
            self._close()

    def _main_loop(self) -> None:
        kernel = self.kernel
        assert kernel is not None
        shell = self.shell
        pending = self._pending
        poller = zmq.Poller()
        poller.register(shell, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        while not self._stopping:
            try:
                if pending:
                    msg: Message | None = pending.popleft()
                else:
                    events = poller.poll()
                    if self._stopping:
                        break
                    msg = None
                    for sock, _ in events:
                        if sock is shell:
                            msg = self._recv(shell, "shell")
                        else:
                            os.read(self._wake_r, 64)
                    if msg is None:
                        continue
                assert msg is not None
                kernel._dispatch_shell(msg)
                if self._to_abort:
                    self._abort_queued()
            except KeyboardInterrupt:
                continue  # a SIGINT that raced the end of do_execute: nothing to interrupt

    def _recv(self, sock: zmq.Socket, channel: str) -> Message | None:
        """Receive and verify one message; bad ones are logged and dropped, never executed."""
        try:
            frames = recv_frames(sock, _NOBLOCK)
        except zmq.Again:
            return None
        try:
            return self.session.deserialize(frames)
        except ProtocolError as e:
            _warn(f"dropped a message on {channel}: {e}")
        except Exception as e:  # anything else a hostile frame can provoke
            _warn(f"dropped a malformed message on {channel}: {type(e).__name__}: {e}")
        return None

    def take_queued(self) -> None:
        """``stop_on_error``: set aside the executes already queued behind a failed one.

        Called *before* the failed execute's reply goes out, so only requests the client sent
        without knowing of the error are aborted (spec, "Execute": stop_on_error). Other
        requests stay queued in order.
        """
        while True:
            try:
                frames = self.shell.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                msg = self.session.deserialize(frames)
            except Exception as e:
                _warn(f"dropped a message on shell: {e}")
                continue
            if msg.msg_type == "execute_request":
                self._to_abort.append(msg)
            else:
                self._pending.append(msg)

    def _abort_queued(self) -> None:
        """Answer the executes set aside by :meth:`take_queued` with status ``aborted``."""
        kernel = self.kernel
        assert kernel is not None
        while self._to_abort:
            kernel._abort_execute(self._to_abort.popleft())

    # -- control thread -------------------------------------------------------------------------

    def _control_loop(self) -> None:
        kernel = self.kernel
        assert kernel is not None
        control = self.control
        iopub_fd = self.iopub.fd
        poller = zmq.Poller()
        poller.register(control, zmq.POLLIN)
        poller.register(iopub_fd, zmq.POLLIN)
        poller.register(self._cwake_r, zmq.POLLIN)
        poller.register(self._sig_r, zmq.POLLIN)
        # Imported here, on the control thread: off the main thread's way to the first reply.
        from .parentwatch import _ParentWatch

        watch = _ParentWatch(self.parent_pid, os.environ.get("JPY_PARENT_PID"))
        if watch.ignored:
            _warn(watch.ignored)
        for fd in watch.fds:
            poller.register(fd, zmq.POLLIN)
        timeout = self.parent_poll_ms if watch.needs_polling else None
        self.iopub.check_subscriptions()
        gone = watch.gone(())  # a launcher that died while we started
        if gone:
            _warn(f"{gone} exited; shutting down")
            self.stop()
        try:
            while not self._stopping:
                wait = timeout
                if self._recheck_at is not None:
                    left = max(0, int((self._recheck_at - time.monotonic()) * 1000))
                    wait = left if wait is None else min(wait, left)
                events = dict(poller.poll(wait))
                if self._sig_r in events:
                    self._note_signal()
                if self._recheck_at is not None and time.monotonic() >= self._recheck_at:
                    self._check_interrupt()
                if control in events:
                    msg = self._recv(control, "control")
                    if msg is not None:
                        kernel._dispatch_control(msg)
                if iopub_fd in events:
                    self.iopub.check_subscriptions()
                gone = watch.gone(events)
                if gone:
                    _warn(f"{gone} exited; shutting down")
                    self.stop()
        except zmq.ContextTerminated:
            pass
        except Exception as e:  # keep the reason visible; the main thread still stops cleanly
            if not self._stopping:
                _warn(f"control thread failed: {type(e).__name__}: {e}")
            self.stop()
        finally:
            control.close(linger=1000)
            watch.close()
            self._control_done.set()
        # Watchdog: a do_execute that ignores the interrupt must not keep the process alive.
        if not self._main_done.wait(self.shutdown_grace):
            _warn("do_execute did not return after shutdown; exiting")
            os._exit(0)

    # -- called from the kernel ---------------------------------------------------------------

    def stop(self) -> None:
        """Stop serving (shutdown_request, parent gone); interrupts a running do_execute."""
        self._stopping = True
        if self._fds_closed:
            return
        for fd in (self._wake_w, self._cwake_w):
            with contextlib.suppress(OSError):
                os.write(fd, b"x")
        self.interrupt()

    def input_request(self, prompt: str, password: bool, parent: Message) -> str:
        """Send ``input_request`` on stdin to the requesting client and wait for its reply."""
        stdin = self.stdin
        # Drop stale replies from an earlier, abandoned request.
        while True:
            try:
                stdin.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
        # ROUTER_MANDATORY makes an unroutable send fail instead of vanishing: a client whose
        # stdin connection is still being set up gets a moment to finish it.
        deadline = time.monotonic() + self.stdin_connect_timeout
        while True:
            try:
                self.session.send(
                    stdin,
                    "input_request",
                    {"prompt": prompt, "password": password},
                    parent=parent,
                    idents=parent.idents,
                )
                break
            except zmq.ZMQError as e:
                if e.errno != zmq.EHOSTUNREACH or time.monotonic() > deadline:
                    raise EOFError(f"the frontend is not connected to stdin ({e})") from None
                time.sleep(0.005)  # SIGINT still interrupts this wait
        poller = zmq.Poller()
        poller.register(stdin, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        while True:
            events = dict(poller.poll())  # SIGINT interrupts this wait (KeyboardInterrupt)
            if self._stopping:
                raise EOFError("the kernel is shutting down")
            if stdin not in events:
                continue
            reply = self._recv(stdin, "stdin")
            if reply is None or reply.msg_type != "input_reply":
                continue
            value = reply.content.get("value", "")
            return value if isinstance(value, str) else str(value)

    def _heartbeat(self) -> None:
        try:
            zmq.proxy(self.hb, self.hb)  # echo: ROUTER in, same ROUTER out to the sender
        except zmq.ContextTerminated:
            pass
        except Exception as e:
            _warn(f"heartbeat stopped: {type(e).__name__}: {e}")
        finally:
            self.hb.close(linger=0)

    # -- tear-down -------------------------------------------------------------------------------

    def _close(self) -> None:
        self.stop()
        try:
            # The control thread polls IOPub's fd: let it finish before IOPub closes.
            self._control_done.wait(self.shutdown_grace)
            self.shell.close(linger=1000)
            self.stdin.close(linger=0)
            self.iopub.close(linger=1000)
            # Ends the heartbeat proxy and the control poll (ETERM); flushes replies (linger).
            self.ctx.term()
        finally:
            self._main_done.set()
            self._fds_closed = True
            if threading.current_thread() is threading.main_thread():
                with contextlib.suppress(ValueError):
                    signal.set_wakeup_fd(-1)
            fds = (self._wake_r, self._wake_w, self._cwake_r, self._cwake_w)
            for fd in (*fds, self._sig_r, self._sig_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError, AttributeError):
                pass
