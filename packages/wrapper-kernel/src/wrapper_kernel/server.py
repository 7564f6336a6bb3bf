"""The socket loop that carries a :class:`~wrapper_kernel.kernelbase.Kernel`'s messages.

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

from kernel_mgmt.connection import channel_url, write_connection_file
from kernel_mgmt.protocol import Message, ProtocolError, Session

from .kernelbase import _warn

if TYPE_CHECKING:  # pragma: no cover
    from .kernelbase import Kernel

__all__ = ["KernelServer", "KernelStartupError"]


class KernelStartupError(RuntimeError):
    """The kernel could not start listening (bad connection file, port in use)."""


# pyzmq's Socket.send_multipart spends ~15 µs per message on enum arithmetic and per-frame
# checks (profiled: half an echo round trip). The Cython base methods do the same work in C.
try:
    _send = zmq.backend.Socket.send
    _recv = zmq.backend.Socket.recv
    _get = zmq.backend.Socket.get
except AttributeError:  # pragma: no cover - a pyzmq without the Cython backend class
    _send = zmq.Socket.send
    _recv = zmq.Socket.recv
    _get = zmq.Socket.get
_SNDMORE = int(zmq.SNDMORE)
_RCVMORE = int(zmq.RCVMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_NOBLOCK = int(zmq.NOBLOCK)


# A KeyboardInterrupt raised between two frames of a multipart message would leave half of it
# in the socket, and the next message (an `error`, the `idle` every client waits for) would be
# glued onto it and rejected. So the SIGINT handler does not raise while the main thread is
# inside send_frames/recv_frames (it sees the interrupted frame): it sets this flag, and the
# function raises once the message is whole.
_interrupt_deferred = False


def _raise_deferred() -> None:
    global _interrupt_deferred
    if threading.get_ident() == threading.main_thread().ident:
        _interrupt_deferred = False
        raise KeyboardInterrupt


def send_frames(sock: zmq.Socket, frames: list[Any], flags: int = 0) -> None:
    """``sock.send_multipart(frames)``, without pyzmq's Python-level overhead."""
    last = len(frames) - 1
    more = _SNDMORE | int(flags)
    try:
        for i, frame in enumerate(frames):
            _send(sock, frame, more if i < last else int(flags))
    finally:
        if _interrupt_deferred:
            _raise_deferred()


def recv_frames(sock: zmq.Socket, flags: int = 0) -> list[bytes]:
    """``sock.recv_multipart(flags)`` (raises zmq.Again with NOBLOCK when empty)."""
    try:
        frames = [_recv(sock, flags)]
        while _get(sock, _RCVMORE):
            frames.append(_recv(sock, 0))
    finally:
        if _interrupt_deferred:
            _raise_deferred()
    return frames


_ATOMIC_CODE = (send_frames.__code__, recv_frames.__code__)


class FastSocket:
    """A ROUTER socket's sending side for ``Session.send`` (fast ``send_multipart``).

    Everything else is delegated to the zmq socket, so author code can use it as one.
    """

    def __init__(self, socket: zmq.Socket) -> None:
        self.socket = socket

    def send_multipart(self, frames: list[Any], flags: int = 0, **kwargs: Any) -> None:
        if kwargs:
            self.socket.send_multipart(frames, flags, **kwargs)
        else:
            send_frames(self.socket, frames, flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.socket, name)


class IOPubSocket:
    """The IOPub XPUB socket, shared by the main and control threads behind one lock.

    Looks like a zmq socket to ``Session.send`` and to author code (``send_multipart``).
    XPUB hands us each subscription as a message ``b"\\x01" + topic``; we answer every one
    with ``iopub_welcome`` (JEP 65) so a client knows its subscription is live.

    The control thread waits on the socket's fd for subscriptions. That fd is edge-triggered:
    a send may process the pending "subscription arrived" command and so consume the edge.
    So subscriptions are also checked after each request (:meth:`check_subscriptions`) and,
    during a long stream of output, at most every ``CHECK_INTERVAL`` seconds of sending.
    """

    CHECK_INTERVAL = 0.01

    def __init__(self, socket: zmq.Socket, session: Session) -> None:
        self.socket = socket
        self.session = session
        self.lock = threading.Lock()
        self._topics: dict[str, bytes] = {}
        self._prefix = f"kernel.{session.session_id}."
        self._checked = 0.0
        # Read here, on the binding thread: zmq sockets are not thread-safe, and once the
        # control thread runs, every use of this socket must hold the lock.
        self.fd: int = socket.get(zmq.FD)

    def topic(self, msg_type: str) -> bytes:
        """The topic frame for ``msg_type`` (``kernel.<session>.<msg_type>``, as ipykernel)."""
        topic = self._topics.get(msg_type)
        if topic is None:
            topic = self._topics[msg_type] = (self._prefix + msg_type).encode()
        return topic

    def send_multipart(self, frames: list[Any], flags: int = 0, **kwargs: Any) -> None:
        sock = self.socket
        with self.lock:
            if kwargs:
                sock.send_multipart(frames, flags, **kwargs)
            else:
                send_frames(sock, frames, flags)
            now = time.monotonic()
            if now - self._checked > self.CHECK_INTERVAL:
                self._checked = now
                if _get(sock, _EVENTS) & _POLLIN:
                    self._welcome_locked()

    def send(self, data: Any, flags: int = 0, **kwargs: Any) -> None:
        with self.lock:
            self.socket.send(data, flags, **kwargs)

    def check_subscriptions(self) -> None:
        """Answer pending subscriptions (after a request, or when the socket's fd signals)."""
        with self.lock:
            self._checked = time.monotonic()
            if _get(self.socket, _EVENTS) & _POLLIN:
                self._welcome_locked()

    def _welcome_locked(self) -> None:
        sock = self.socket
        while True:
            try:
                frame = _recv(sock, _NOBLOCK)
            except zmq.Again:
                return
            if frame[:1] != b"\x01":  # unsubscription
                continue
            try:
                topic = frame[1:].decode("utf-8")
            except UnicodeDecodeError:
                continue
            msg = self.session.msg("iopub_welcome", {"subscription": topic})
            send_frames(sock, self.session.serialize(msg, [frame[1:]] if topic else []))

    def close(self, linger: int = 1000) -> None:
        with self.lock:
            self.socket.close(linger=linger)


#: How many generations :func:`_ancestors` walks up before giving up (a loop guard).
_MAX_ANCESTRY = 64


def _ancestors(ppid: int) -> list[int] | None:
    """Our parent *ppid* and its ancestors up to init, from ``/proc/<pid>/stat``; None where
    there is no ``/proc`` (macOS, Windows), so ancestry cannot be told."""
    if not os.path.isdir("/proc/self"):
        return None
    chain: list[int] = []
    pid = ppid
    while pid > 0 and pid not in chain and len(chain) < _MAX_ANCESTRY:
        chain.append(pid)
        if pid == 1:
            break
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            # "pid (comm) state ppid ...": comm may hold spaces and ")", so split after the
            # last ")".
            pid = int(stat[stat.rindex(b")") + 1 :].split()[1])
        except (OSError, ValueError, IndexError):  # exited while we walked, or unreadable
            break
    return chain


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, owned by someone else
        pass
    return True


class _ParentWatch:
    """Notices when the process that launched the kernel dies, so the kernel exits too.

    Two candidates: our parent process (noted at start-up: once it dies we are reparented and
    ``getppid()`` no longer names it), and ``JPY_PARENT_PID``, the pid jupyter_client and
    kernel_mgmt's launchers put in the kernel's environment. The latter covers a launcher that
    started us through a wrapper (a shell, an environment activator) that outlives it, and one
    that died before we started. Linux gives a pidfd that becomes readable at exit; elsewhere
    the pids are polled.

    ``JPY_PARENT_PID`` is inherited by every process below the launcher, so a kernel may see a
    stale value from an unrelated session (``launch_kernel(independent=True)`` keeps it): a
    dead pid, or one reused by another process. It is trusted only when it names an ancestor
    (on Linux, the ``/proc`` ppid chain; elsewhere only our parent itself), or when we were
    orphaned before we ran (our parent is init): then a dead one is the launcher that died
    while we started. Otherwise it is ignored with one line on stderr. (ipykernel goes
    further and ignores any value but the original parent's pid.) Not covered: a launcher
    that died before we ran while a child subreaper (``systemd --user``) adopted us, which
    looks like a stale value.
    """

    def __init__(self, ppid: int, jpy_parent: str | None) -> None:
        pids = [ppid] if ppid > 1 else []
        self.ppid = ppid
        self.ignored: str | None = None  # why JPY_PARENT_PID is not watched
        self._dead: int | None = None
        jpy = self._launcher(ppid, jpy_parent)
        if jpy is not None:
            pids.append(jpy)
        self.pids: dict[int, int | None] = {}  # pid -> pidfd (None: poll)
        for pid in pids:
            try:
                self.pids[pid] = os.pidfd_open(pid)
            except ProcessLookupError:
                self._dead = pid  # already gone
            except (AttributeError, OSError):  # no pidfd here (macOS, old Linux): poll
                self.pids[pid] = None
        self.fds = {fd: pid for pid, fd in self.pids.items() if fd is not None}
        self.needs_polling = any(fd is None for fd in self.pids.values())

    def _launcher(self, ppid: int, jpy_parent: str | None) -> int | None:
        """The ``JPY_PARENT_PID`` to watch besides our parent, or None (see the class doc)."""
        try:
            jpy = int(jpy_parent or 0)
        except ValueError:
            return None
        if jpy <= 1 or jpy == ppid or jpy == os.getpid():
            return None
        if ppid == 1:
            # Orphaned before we ran: our ancestry is lost, the launcher's word is all there
            # is. Dead, it died while we started (the watch reports it at once).
            return jpy
        if not _pid_exists(jpy):
            self.ignored = (
                f"JPY_PARENT_PID={jpy} names no running process while our parent {ppid} is "
                "alive (a value inherited from another session?); ignoring it"
            )
            return None
        chain = _ancestors(ppid)
        if chain is not None and jpy in chain:
            return jpy
        self.ignored = (
            f"JPY_PARENT_PID={jpy} is not "
            + ("an ancestor of this kernel" if chain is not None else f"our parent ({ppid})")
            + " (a value inherited from another session?); ignoring it"
        )
        return None

    def gone(self, events: Any) -> str | None:
        """A description of the launcher that died, if one did (``events``: ready fds)."""
        dead = self._dead
        for pid, fd in self.pids.items():
            if dead is not None:
                break
            if fd is not None:
                if fd in events:
                    dead = pid
            elif pid != self.ppid and not _pid_exists(pid):
                dead = pid
        # Our parent: reparenting is the sure sign (also when its pid was reused).
        if dead is None and self.ppid in self.pids and os.getppid() != self.ppid:
            dead = self.ppid
        if dead is None:
            return None
        what = "parent process" if dead == self.ppid else "launching process (JPY_PARENT_PID)"
        return f"{what} {dead}"

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


class KernelServer:
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
        self.kernel: Kernel | None = None
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
        # Signal wakeup pipe (signal.set_wakeup_fd): the C-level SIGINT handler writes a byte
        # here. See _on_sigint and _check_interrupt for why we watch it.
        self._sig_r, self._sig_w = os.pipe()
        os.set_blocking(self._sig_r, False)
        os.set_blocking(self._sig_w, False)
        # Reentrant: a second SIGINT may run the handler again inside the first one.
        self._sig_lock = threading.RLock()
        self._sig_seq = 0  # SIGINT bytes seen by the control thread
        self._handled_seq = 0  # _sig_seq when the Python-level handler last ran
        self._main_ident = threading.main_thread().ident
        #: The process that launched us, noted before binding: if it dies before the control
        #: thread watches it, we are reparented and getppid() no longer names it.
        self.parent_pid = os.getppid()
        self.ctx = zmq.Context()
        try:
            self._bind()
        except BaseException:
            # Release what we opened: an embedding program may retry with other ports.
            self.ctx.destroy(linger=0)
            for fd in (self._wake_r, self._wake_w, self._cwake_r, self._cwake_w):
                os.close(fd)
            os.close(self._sig_r)
            os.close(self._sig_w)
            raise

    # -- set-up ---------------------------------------------------------------------------------

    def _bind(self) -> None:
        ctx = self.ctx
        info = self.info
        self.shell = ctx.socket(zmq.ROUTER)
        self.control = ctx.socket(zmq.ROUTER)
        self.stdin = ctx.socket(zmq.ROUTER)
        iopub = ctx.socket(zmq.XPUB)
        self.hb = ctx.socket(zmq.ROUTER)
        # Every subscription (not only the first per topic) reaches us, for iopub_welcome.
        iopub.setsockopt(zmq.XPUB_VERBOSE, 1)
        for sock in (self.shell, self.control, self.stdin):
            # A client reconnecting with the same identity takes over its old route.
            sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        for sock in (self.shell, self.control, iopub):
            sock.setsockopt(zmq.LINGER, 1000)  # let the last replies out at shutdown
        self.stdin.setsockopt(zmq.LINGER, 0)
        self.stdin.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.hb.setsockopt(zmq.LINGER, 0)
        changed = False
        pairs = (
            (self.shell, "shell"),
            (iopub, "iopub"),
            (self.stdin, "stdin"),
            (self.control, "control"),
            (self.hb, "hb"),
        )
        ip = info.get("ip") or "127.0.0.1"
        transport = info.get("transport") or "tcp"
        if ":" in ip:
            for sock, _ in pairs:
                sock.setsockopt(zmq.IPV6, 1)
        for sock, channel in pairs:
            port = info.get(f"{channel}_port")
            try:
                if transport == "tcp" and not port:
                    # Port 0: we pick and record it (ipykernel does the same), no race.
                    host = f"[{ip}]" if ":" in ip else ip
                    info[f"{channel}_port"] = sock.bind_to_random_port(f"tcp://{host}")
                    changed = True
                else:
                    sock.bind(channel_url(info, channel))
            except (zmq.ZMQError, KeyError, ValueError) as e:
                raise KernelStartupError(
                    f"cannot listen on the {channel} channel ({transport} {ip} port {port}): {e}. "
                    "Another process may hold the port; start the kernel again with new ports."
                ) from None
        if changed and self.connection_file:
            write_connection_file(self.connection_file, **info)
        self.iopub = IOPubSocket(iopub, self.session)

    def attach(self, kernel: Kernel) -> None:
        """Give the kernel its session and sockets (the names ipykernel kernels use)."""
        self.kernel = kernel
        kernel._server = self
        kernel.session = self.session
        kernel.iopub_socket = self.iopub
        kernel.stdin_socket = FastSocket(self.stdin)
        kernel.shell_socket = FastSocket(self.shell)
        kernel.control_socket = FastSocket(self.control)

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
        # Spec ("Kernel status"): `starting` once, before the first request.
        self.kernel._publish("status", {"execution_state": "starting"}, {})
        try:
            self._main_loop()
        finally:
            self._close()

    def _on_sigint(self, signum: int, frame: Any) -> None:
        # Acknowledge: consume the wakeup bytes, so the control thread knows this SIGINT
        # reached Python (see _check_interrupt).
        with self._sig_lock:
            try:
                while os.read(self._sig_r, 512):
                    pass
            except OSError:  # BlockingIOError: drained
                pass
            self._handled_seq = self._sig_seq
        # Only user code is interrupted; an idle kernel (or our own bookkeeping) carries on.
        if self.in_user_code:
            if frame is not None and frame.f_code in _ATOMIC_CODE:
                global _interrupt_deferred
                _interrupt_deferred = True  # raised when the message is whole
                return
            raise KeyboardInterrupt
        if self.executing:
            # The interrupt raced the start of do_execute (a client interrupts as soon as it
            # sees execute_input): deliver it when the author's code starts.
            self.interrupt_pending = True

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
            msg = self._to_abort.popleft()
            kernel._parent = msg
            kernel._publish_status("busy", msg)
            content = {"status": "aborted", "execution_count": kernel.execution_count}
            kernel._reply(self.shell, msg, content)
            kernel._publish_status("idle", msg)

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

    # An interrupt must not be lost. CPython runs a Python signal handler only between
    # bytecodes or when a blocking call returns EINTR; a SIGINT that lands after do_execute's
    # `time.sleep` released the GIL but before it entered the syscall (likely when the control
    # thread sends it: it runs exactly when the main thread lets go of the GIL) is noted by
    # the C handler and then waits for the whole sleep. So the control thread watches the
    # wakeup pipe, and while a SIGINT has not reached the Python handler and do_execute runs,
    # repeats it to the main thread every RESIGNAL_INTERVAL.
    RESIGNAL_INTERVAL = 0.02
    RESIGNAL_MAX = 250  # 5 s; the shutdown watchdog covers code that never gets interrupted
    _recheck_at: float | None = None
    _resignals = 0

    def _note_signal(self) -> None:
        with self._sig_lock:
            try:
                data = os.read(self._sig_r, 512)
            except OSError:  # the handler drained it first: delivered
                return
            if signal.SIGINT not in data:
                return
            self._sig_seq += 1
        if self._recheck_at is None:
            self._resignals = 0
            self._recheck_at = time.monotonic() + self.RESIGNAL_INTERVAL

    def _check_interrupt(self) -> None:
        # Check and repeat under the handler's lock: were the handler to run between the two
        # (the interrupt delivered, the execute answered, the next one started), the repeat
        # would interrupt an execute nobody asked to interrupt.
        with self._sig_lock:
            delivered = self._handled_seq >= self._sig_seq
            if delivered or not self.executing or self._resignals >= self.RESIGNAL_MAX:
                self._recheck_at = None
                return
            self._resignals += 1
            if self._main_ident is not None:
                signal.pthread_kill(self._main_ident, signal.SIGINT)
        self._recheck_at = time.monotonic() + self.RESIGNAL_INTERVAL

    # -- called from the kernel ---------------------------------------------------------------

    def interrupt(self) -> None:
        """Message-mode interrupt: SIGINT to the main thread, which raises in do_execute."""
        if (self.executing or self.in_user_code) and self._main_ident is not None:
            signal.pthread_kill(self._main_ident, signal.SIGINT)

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
