"""The asyncio kernel client: one socket per channel, replies routed to awaitables.

:class:`KernelClient` connects to a kernel's five channels with ``zmq.asyncio`` sockets and reads
them from event-loop reader callbacks (no task or future per message). Every request method
sends at once and returns an awaitable
(:class:`ReplyFuture`) that resolves to the reply :class:`~kernel_mgmt.protocol.Message`,
matched by the reply's ``parent_header.msg_id``. Handlers added with :meth:`add_handler` see
every message of the channels they asked for.

It never hangs on a dead kernel: for a kernel it owns (``manager`` given) the client watches
the process and fails every pending request with :class:`KernelDied` as soon as the process
exits; for other kernels it pings the heartbeat channel. Messages from the kernel that fail
signature checks are logged and dropped.
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
import signal
import sys
import threading
import types
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any

import zmq
import zmq.asyncio

from kernel_mgmt.connection import PORT_NAMES, channel_url, read_connection_file
from kernel_mgmt.protocol import Message, ProtocolError, Session

log = logging.getLogger("kernel_mgmt.client")

#: Channels whose messages handlers can receive (the heartbeat carries no messages).
HANDLER_CHANNELS = frozenset({"shell", "iopub", "stdin", "control"})
#: libzmq retries a refused connect after this many ms (default 100). Clients usually
#: connect before the kernel has bound its ports; 100 ms would quantise every start.
#: No exponential back-off (RECONNECT_IVL_MAX stays 0): with back-off the last retry could
#: come long after a slow kernel finally binds. A refused loopback connect costs microseconds.
RECONNECT_IVL_MS = 10
#: Idle waiters kept for execute requests nobody has awaited the idle of yet; beyond this
#: the oldest are dropped (a kernel that never sends ``status: idle`` must not leak memory).
MAX_IDLE_WAITERS = 1000
#: How long wait_for_ready waits for the first IOPub message after a kernel_info_reply
#: before asking again (kernels without ``iopub_welcome`` only publish on requests).
IOPUB_RETRY_S = 0.25
#: Messages read per reader callback before yielding to the rest of the event loop.
MAX_BATCH = 64
#: Above this many outstanding requests, those whose awaitable was cancelled are purged.
PENDING_PURGE = 4096

_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE_NOBLOCK = int(zmq.SNDMORE) | _NOBLOCK
_RCVMORE = int(zmq.RCVMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)
# pyzmq's compiled socket methods, called with int flags: its Python-level send/recv_multipart
# wrappers cost as much again per message in enum arithmetic and argument checks.
_zsend = zmq.backend.Socket.send
_zrecv = zmq.backend.Socket.recv
_zget = zmq.backend.Socket.get


def _send_multipart(sock: zmq.Socket, frames: list[bytes]) -> None:
    """Send *frames* (bytes) as one message without blocking; zmq.Again if the queue is full.

    libzmq queues multipart messages atomically: if the first frame goes, all do.
    """
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        _zsend(sock, frame, _SNDMORE_NOBLOCK if i < last else _NOBLOCK)


def _recv_multipart(sock: zmq.Socket) -> list[bytes]:
    """Receive one whole message without blocking; zmq.Again if none is waiting."""
    parts = [_zrecv(sock, _NOBLOCK)]
    while _zget(sock, _RCVMORE):
        parts.append(_zrecv(sock, _NOBLOCK))
    return parts


#: Placeholder in ``_idle_waiters``: an execute whose idle nobody awaits yet (no future made).
_NOT_IDLE = None


class KernelDied(RuntimeError):
    """The kernel exited (or stopped answering its heartbeat) while we were waiting for it.

    :attr:`returncode` is the exit code when known (negative: killed by that signal) and
    :attr:`stderr` the last lines the kernel wrote to stderr.
    """

    def __init__(self, message: str, returncode: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


def describe_exit(returncode: int | None) -> str:
    """How a process ended, for messages: ``killed by SIGKILL (exit code -9)``, ``exit code 3``.

    POSIX return codes below zero mean "killed by signal -rc" (``subprocess`` convention).
    """
    if returncode is None:
        return ""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name} (exit code {returncode})"
    return f"exit code {returncode}"


def kernel_label(manager: Any) -> str:
    """Name a kernel for messages: ``kernel pyimport/kernel (id 1f0c…)``.

    Uses the manager's ``kernel_type`` (recorded by ``KernelFinder.launch``) and
    ``kernel_id`` when it has them; managers made by hand may have neither.
    """
    kernel_type = getattr(manager, "kernel_type", None) if manager is not None else None
    kernel_id = getattr(manager, "kernel_id", None) if manager is not None else None
    if kernel_type and kernel_id:
        return f"kernel {kernel_type} (id {kernel_id})"
    if kernel_type:
        return f"kernel {kernel_type}"
    if kernel_id:
        return f"the kernel (id {kernel_id})"
    return "the kernel"


class ConnectionInfoError(ValueError):
    """Connection info given to a client lacks what it needs to reach the kernel."""


#: Keys a client needs to reach all five channels (messaging spec, "Connection files").
REQUIRED_CONNECTION_KEYS = ("ip", *PORT_NAMES)


def connection_info_from(
    connection_info: Mapping[str, Any] | str | os.PathLike[str],
) -> dict[str, Any]:
    """A copy of *connection_info*, or the contents of a connection file given by its path.

    Raises :class:`~kernel_mgmt.connection.ConnectionFileError` for a file that cannot be
    read and :class:`ConnectionInfoError` (both ValueErrors) for a mapping missing keys.
    """
    if isinstance(connection_info, (str, os.PathLike)):
        return read_connection_file(os.fsdecode(connection_info))
    if not isinstance(connection_info, Mapping):
        raise TypeError(
            "connection_info must be a mapping (the kernel's connection info) or the path "
            f"of a connection file, not {type(connection_info).__name__}"
        )
    info = dict(connection_info)
    missing = [k for k in REQUIRED_CONNECTION_KEYS if k not in info]
    if missing:
        raise ConnectionInfoError(
            f"connection info lacks {', '.join(missing)}: give the kernel's whole connection "
            "info (as returned by the launch) or the path of its connection file"
        )
    return info


class ReplyFuture(asyncio.Future):  # type: ignore[type-arg]
    """An awaitable reply; ``jupyter_msg_id`` is the id of the request that was sent."""

    jupyter_msg_id: str = ""


class Done:
    """An already-finished awaitable, for methods the seed made awaitable that need no wait."""

    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield  # pragma: no cover - makes this a generator

    def result(self) -> Any:
        return self.value


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen: requests nobody awaits must not log at GC."""
    if not fut.cancelled():
        fut.exception()


def _fail(fut: Any, err: BaseException) -> None:
    """Fail a pending reply; marked as retrieved, so one nobody awaits logs nothing at GC."""
    if not fut.done():
        fut.set_exception(err)
        fut.exception()


def _accepts_two_args(func: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= 2


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


class KernelClient:
    """Talks to one kernel over ZeroMQ from an asyncio event loop.

    :param connection_info: the kernel's connection info (ports, ip, transport, key, ...),
        or the path of its connection file.
    :param manager: the kernel's manager when this client owns the kernel: used to watch
        the process, interrupt by signal and terminate.
    :param use_heartbeat: for kernels without a manager, ping the heartbeat channel to
        notice a dead kernel.

    Request methods send immediately and return awaitables resolving to the reply.
    """

    #: Default for execute(allow_stdin=None).
    allow_stdin = True
    #: Heartbeat: seconds between pings, and seconds without a pong that count as a miss.
    hb_interval = 0.5
    time_to_dead = 1.0
    #: Consecutive missed heartbeats after which a kernel is declared dead.
    hb_misses = 2

    def __init__(
        self,
        connection_info: Mapping[str, Any] | str | os.PathLike[str],
        manager: Any = None,
        use_heartbeat: bool = True,
    ) -> None:
        self.connection_info = connection_info_from(connection_info)
        self.manager = manager
        self.use_heartbeat = use_heartbeat
        self.session = Session(
            key=self.connection_info.get("key", b""),
            signature_scheme=self.connection_info.get("signature_scheme", "hmac-sha256"),
            username="kernel_mgmt",
        )
        #: The content of the last successful kernel_info_reply (set by wait_for_ready).
        self.kernel_info_dict: dict[str, Any] | None = None
        self.context = zmq.asyncio.Context.instance()
        self.sockets: dict[str, zmq.asyncio.Socket] = {}
        # Synchronous views of the same sockets: the hot path sends and reads with NOBLOCK
        # from the event loop's own reader callbacks, skipping zmq.asyncio's per-call futures.
        self._sync: dict[str, zmq.Socket] = {}
        self._outbox: dict[str, list[list[bytes]]] = {}
        identity = self.session.session_id.encode("ascii")
        for channel, kind in (
            ("shell", zmq.DEALER),
            ("control", zmq.DEALER),
            ("stdin", zmq.DEALER),
            ("iopub", zmq.SUB),
        ):
            sock = self._make_socket(kind)
            if channel in ("shell", "stdin"):
                # The kernel routes input_request to the stdin socket with the identity the
                # execute_request came from on shell (messaging spec, "Messages on the stdin
                # ROUTER/DEALER channel"): both must share one identity.
                sock.setsockopt(zmq.IDENTITY, identity)
            if kind == zmq.SUB:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(channel_url(self.connection_info, channel))
            self.sockets[channel] = sock
            self._sync[channel] = zmq.Socket.shadow(sock.underlying)
        self._handlers: list[tuple[Callable[..., Any], set[str], bool]] = []
        self._pending: dict[str, Any] = {}
        self._idle_waiters: dict[str, asyncio.Future[Any] | None] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._readers: list[int] = []
        #: Guards every use of the channel sockets: BlockingKernelClient sends from its
        #: caller's thread (one thread hop less per request) while this loop reads them.
        #: ZeroMQ sockets may change threads given a full memory barrier, which a lock is.
        self._io_lock = threading.Lock()
        #: ``waiter``: set by BlockingKernelClient in its caller's thread around a request
        #: method call; _send then sends from that thread and resolves the waiter on reply.
        self._tls = threading.local()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._iopub_seen: asyncio.Event | None = None
        self._died: KernelDied | None = None
        self._hb_task: asyncio.Task[Any] | None = None
        self._closed = False
        with contextlib.suppress(RuntimeError):  # no running loop: start on first use
            self._ensure_started()

    def _make_socket(self, kind: int) -> zmq.asyncio.Socket:
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        return sock

    # -- lifecycle ----------------------------------------------------------------------------

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return loop
        if self._loop is not None and not self._loop.is_closed():
            raise RuntimeError("this KernelClient is bound to another event loop")
        if self._closed:
            raise RuntimeError("this KernelClient is closed")
        self._loop = loop
        self._iopub_seen = asyncio.Event()
        self._readers = []
        for channel in ("shell", "control", "stdin", "iopub"):
            fd = self.sockets[channel].FD
            loop.add_reader(fd, self._on_readable, channel)
            self._readers.append(fd)
            # ZMQ_FD is edge-triggered: messages queued before we watched it raise no edge.
            loop.call_soon(self._on_readable, channel)
        if self.manager is not None:
            self._tasks.append(loop.create_task(self._watch_process()))
        return loop

    @property
    def owned_kernel(self) -> bool:
        """True if this client 'owns' the kernel, i.e. has its manager."""
        return self.manager is not None

    @property
    def died(self) -> KernelDied | None:
        """The error describing the kernel's death, or None while it is (believed) alive."""
        return self._died

    def close(self) -> Done:
        """Close the sockets and stop the receive tasks; the client cannot be used after.

        Also awaitable (``await client.close()``), as in the seed's examples.
        """
        if self._closed:
            return Done()
        self._closed = True
        for task in [*self._tasks, *([self._hb_task] if self._hb_task else [])]:
            with contextlib.suppress(RuntimeError):  # its loop is already closed
                task.cancel()
        closed = KernelDied("the client was closed")
        for fut in [*self._pending.values(), *self._idle_waiters.values()]:
            if fut is not None:
                with contextlib.suppress(RuntimeError):
                    _fail(fut, closed)
        self._pending.clear()
        self._idle_waiters.clear()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            # Before the sockets close: a stale fd left in the selector would break it.
            for fd in self._readers:
                with contextlib.suppress(Exception):
                    loop.remove_reader(fd)
        self._readers = []
        with self._io_lock:
            for sock in self.sockets.values():
                with contextlib.suppress(Exception):
                    sock.close(linger=0)
        return Done()

    async def __aenter__(self) -> KernelClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- receiving ----------------------------------------------------------------------------

    def _on_readable(self, channel: str) -> None:
        """Reader callback: read *channel* with NOBLOCK until it is empty, dispatching each.

        ZMQ_FD is edge-triggered, so a batch must end on ``Again`` (or be resumed by
        ``call_soon``) or later messages would raise no new wake-up.
        """
        if self._closed:
            return
        sock = self._sync[channel]
        lock = self._io_lock
        if self._outbox.get(channel):
            with lock:
                self._flush(channel)
        deserialize = self.session.deserialize
        dispatch = self._dispatch
        for _ in range(MAX_BATCH):
            try:
                with lock:
                    if self._closed:
                        return
                    frames = _recv_multipart(sock)
            except zmq.Again:
                return
            except zmq.ZMQError as e:
                if self._closed or sock.closed:
                    return
                # Unexpected (the edge may be consumed): look again shortly, never give up.
                log.warning("receive error on %s channel: %s", channel, e)
                assert self._loop is not None
                self._loop.call_later(0.01, self._on_readable, channel)
                return
            try:
                msg = deserialize(frames)
            except ProtocolError as e:
                # Never let a bad message stop the reading: a wrong key or a stray peer
                # must not take the client down with it.
                log.warning("dropped a message on the %s channel: %s", channel, e)
                continue
            try:
                dispatch(channel, msg)
            except Exception:
                log.exception("error dispatching %s message %s", channel, msg.msg_type)
            if self._closed:
                return
        # More may be waiting: come back after the rest of the loop had its turn.
        assert self._loop is not None
        self._loop.call_soon(self._on_readable, channel)

    def _send_frames(self, channel: str, frames: list[bytes], threadsafe: bool = False) -> None:
        """Queue *frames* on *channel* without blocking (from the loop, or any thread if
        *threadsafe*); raises RuntimeError if the client was closed."""
        sock = self._sync[channel]
        with self._io_lock:
            if self._closed:
                raise RuntimeError("this KernelClient is closed")
            if self._outbox.get(channel):
                self._outbox[channel].append(frames)  # keep the order
                self._flush(channel)
            else:
                try:
                    _send_multipart(sock, frames)
                except zmq.Again:
                    # High-water mark reached (a kernel not reading): send when writable.
                    self._outbox.setdefault(channel, []).append(frames)
            # Sending can consume the FD's edge while a reply became readable: look now.
            readable = _zget(sock, _EVENTS) & _POLLIN
        if readable and self._loop is not None:
            if threadsafe:
                self._loop.call_soon_threadsafe(self._on_readable, channel)
            else:
                self._loop.call_soon(self._on_readable, channel)

    def _flush(self, channel: str) -> None:
        """Send what waited for the high-water mark to clear (hold ``_io_lock``)."""
        sock = self._sync[channel]
        box = self._outbox[channel]
        while box:
            try:
                _send_multipart(sock, box[0])
            except zmq.Again:
                if self._loop is not None:  # ZMQ_FD signals POLLOUT changes too; retry soon
                    self._loop.call_soon_threadsafe(
                        self._loop.call_later, 0.005, self._on_readable, channel
                    )
                return
            box.pop(0)

    def _dispatch(self, channel: str, msg: Message) -> None:
        parent_id = msg.parent_header.get("msg_id")
        if self._hb_task is None and self.manager is None and self.use_heartbeat:
            # Start pinging once the kernel has shown it is up, so a slow start is not
            # mistaken for a dead kernel.
            assert self._loop is not None
            self._hb_task = self._loop.create_task(self._heartbeat())
        if channel == "iopub":
            assert self._iopub_seen is not None
            self._iopub_seen.set()
            if (
                parent_id in self._idle_waiters
                and msg.msg_type == "status"
                and msg.content.get("execution_state") == "idle"
            ):
                fut = self._idle_waiters.pop(parent_id)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        elif msg.msg_type == "kernel_info_reply" and msg.content.get("status", "ok") == "ok":
            # Some kernels omit status; absence means ok.
            self.kernel_info_dict = msg.content
        for handler, channels, two in self._handlers[:] if self._handlers else ():
            if channel in channels:
                try:
                    handler(msg, channel) if two else handler(msg)
                except Exception:
                    log.exception("message handler %r failed", handler)
        if channel in ("shell", "control") and parent_id is not None:
            fut = self._pending.pop(parent_id, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    def add_handler(self, handler: Callable[..., Any], channels: str | Iterable[str]) -> Any:
        """Call *handler(msg, channel)* (or *handler(msg)*) for every message on *channels*.

        *channels* is a name or a set of names among 'shell', 'iopub', 'stdin', 'control'.
        Handlers run in the event loop: they must not block.
        """
        chans = {channels} if isinstance(channels, str) else set(channels)
        invalid = chans - HANDLER_CHANNELS
        if invalid:
            raise ValueError(
                f"invalid channel names {sorted(invalid)}; use {sorted(HANDLER_CHANNELS)}"
            )
        for func, existing, _two in self._handlers:
            if func == handler:
                existing.update(chans)
                return handler
        self._handlers.append((handler, chans, _accepts_two_args(handler)))
        return handler

    def remove_handler(
        self, handler: Callable[..., Any], channels: str | Iterable[str] | None = None
    ) -> None:
        """Stop calling *handler* (for *channels* only, or for all when None)."""
        for i, (func, existing, _two) in enumerate(self._handlers):
            if func == handler:
                if channels is None:
                    del self._handlers[i]
                else:
                    existing -= {channels} if isinstance(channels, str) else set(channels)
                    if not existing:
                        del self._handlers[i]
                return

    # -- death detection ----------------------------------------------------------------------

    def _death_error(self, why: str = "") -> KernelDied:
        mgr = self.manager
        rc = getattr(mgr, "returncode", None) if mgr is not None else None
        tail = ""
        if mgr is not None and hasattr(mgr, "stderr_tail"):
            with contextlib.suppress(Exception):
                tail = mgr.stderr_tail() or ""
        msg = f"{kernel_label(mgr)} died"
        how = [h for h in (describe_exit(rc), why) if h]
        if how:
            msg += ": " + "; ".join(how)
        if tail.strip():
            msg += ". Last lines of its stderr:\n" + tail.rstrip()
        return KernelDied(msg, returncode=rc, stderr=tail)

    def _mark_dead(self, err: KernelDied) -> None:
        if self._died is not None:
            return
        self._died = err
        for fut in [*self._pending.values(), *self._idle_waiters.values()]:
            if fut is not None:
                _fail(fut, err)
        self._pending.clear()
        self._idle_waiters.clear()

    async def _watch_process(self) -> None:
        mgr = self.manager
        try:
            while await mgr.wait():
                pass  # wait(None) only returns early on a spurious wake-up
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("manager.wait() failed; polling is_alive()", exc_info=True)
            while await mgr.is_alive():
                await asyncio.sleep(0.05)
        # Replies the kernel sent just before exiting may still sit in our sockets: let the
        # receive tasks drain them before failing what is left.
        await asyncio.sleep(0.02)
        self._mark_dead(self._death_error())

    async def _heartbeat(self) -> None:
        """Ping the heartbeat channel; `hb_misses` pongs missed in a row mean a dead kernel."""
        url = channel_url(self.connection_info, "hb")
        misses = 0
        sock = self._make_socket(zmq.REQ)
        sock.connect(url)
        try:
            while True:
                await sock.send(b"ping")
                try:
                    await asyncio.wait_for(sock.recv(), self.time_to_dead)
                except TimeoutError:
                    misses += 1
                    # A REQ socket that lost its reply is stuck in the "awaiting reply"
                    # state: start over with a fresh one.
                    sock.close(linger=0)
                    if misses >= self.hb_misses:
                        self._mark_dead(self._death_error("it stopped answering its heartbeat"))
                        return
                    sock = self._make_socket(zmq.REQ)
                    sock.connect(url)
                    continue
                misses = 0
                await asyncio.sleep(self.hb_interval)
        finally:
            sock.close(linger=0)

    async def is_alive(self) -> bool:
        """True while the kernel runs (its process for owned kernels, else its heartbeat)."""
        if self.manager is not None:
            return bool(await self.manager.is_alive())
        return self._died is None

    # -- sending ------------------------------------------------------------------------------

    def _check_usable(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise RuntimeError("this KernelClient is closed")
        return self._ensure_started()

    def _send(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        _header: Mapping[str, Any] | None = None,
        expect_reply: bool = True,
        parent: Mapping[str, Any] | None = None,
    ) -> ReplyFuture:
        waiter = getattr(self._tls, "waiter", None)
        if waiter is not None:  # a BlockingKernelClient request, in its caller's thread
            self._tls.waiter = None
            if self._closed:
                raise RuntimeError("this KernelClient is closed")
            fut = waiter
        else:
            fut = ReplyFuture(loop=self._check_usable())
        msg = self.session.msg(msg_type, content, parent=parent)
        if _header:
            msg["header"].update(_header)
            msg["msg_id"] = msg["header"]["msg_id"]
        msg_id = msg["header"]["msg_id"]
        fut.jupyter_msg_id = msg_id
        if self._died is not None:
            _fail(fut, self._died)
            return fut  # type: ignore[no-any-return]
        # The tables below are shared with the loop thread: only single dict operations
        # (atomic under the GIL) and C-level copies are used on them.
        if expect_reply:
            pending = self._pending
            if len(pending) >= PENDING_PURGE:  # awaitables cancelled before their reply
                for k, f in list(pending.items()):
                    if f.done():
                        pending.pop(k, None)
            pending[msg_id] = fut
        if msg_type == "execute_request":
            idle = self._idle_waiters
            idle[msg_id] = _NOT_IDLE
            if len(idle) > MAX_IDLE_WAITERS:
                oldest = next(iter(list(idle)))
                dropped = idle.pop(oldest, None)
                if dropped is not None:
                    assert self._loop is not None
                    self._loop.call_soon_threadsafe(dropped.cancel)
        self._send_frames(channel, self.session.serialize(msg), threadsafe=waiter is not None)
        if waiter is not None and self._died is not None:
            # Died while we registered: _mark_dead may have swept the table just before.
            _fail(waiter, self._died)
        if not expect_reply:
            fut.set_result(msg)
        return fut  # type: ignore[no-any-return]

    # -- requests (messaging spec 5.3) --------------------------------------------------------

    def execute(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
        interrupt_timeout: float | None = None,
        idle_timeout: float | None = None,
        raise_on_no_idle: bool = False,
        _header: Mapping[str, Any] | None = None,
    ) -> ReplyFuture:
        """Execute *code*; resolves to the execute_reply.

        With *interrupt_timeout*, the kernel is interrupted if no reply came within that many
        seconds. With *idle_timeout*, also wait (up to that long) for the request's IOPub
        ``status: idle``, so all its output has been handled; *raise_on_no_idle* turns a
        missing idle into TimeoutError.
        """
        content = {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": user_expressions or {},
            "allow_stdin": self.allow_stdin if allow_stdin is None else allow_stdin,
            "stop_on_error": stop_on_error,
        }
        fut = self._send("shell", "execute_request", content, _header)
        if not (interrupt_timeout or idle_timeout):
            return fut
        outer = ReplyFuture(loop=self._loop)
        outer.jupyter_msg_id = fut.jupyter_msg_id
        outer.add_done_callback(_retrieve)
        task = asyncio.ensure_future(
            self._finish_execute(fut, interrupt_timeout, idle_timeout, raise_on_no_idle)
        )

        def copy(t: asyncio.Task[Any]) -> None:
            if outer.done():
                return
            if t.cancelled():
                outer.cancel()
            elif t.exception() is not None:
                outer.set_exception(t.exception())  # type: ignore[arg-type]
            else:
                outer.set_result(t.result())

        task.add_done_callback(copy)
        outer.add_done_callback(lambda o: o.cancelled() and task.cancel())
        return outer

    async def _finish_execute(
        self,
        fut: ReplyFuture,
        interrupt_timeout: float | None,
        idle_timeout: float | None,
        raise_on_no_idle: bool,
    ) -> Message:
        if interrupt_timeout:
            try:
                reply = await asyncio.wait_for(asyncio.shield(fut), interrupt_timeout)
            except TimeoutError:
                await self.interrupt()
                reply = await fut
        else:
            reply = await fut
        if idle_timeout:
            ok = await self.wait_for_idle(fut.jupyter_msg_id, idle_timeout)
            if not ok and raise_on_no_idle:
                raise TimeoutError(
                    f"no IOPub idle status for execute request {fut.jupyter_msg_id} "
                    f"within {idle_timeout} s"
                )
        return reply

    async def wait_for_idle(self, msg_id: str, timeout: float | None) -> bool:
        """Wait for the IOPub ``status: idle`` of execute request *msg_id*; False on timeout."""
        if msg_id not in self._idle_waiters:
            return True  # already seen (or not an execute request of ours)
        waiter = self._idle_waiters[msg_id]
        if waiter is None:
            assert self._loop is not None
            waiter = self._idle_waiters[msg_id] = self._loop.create_future()
            waiter.add_done_callback(_retrieve)
        elif waiter.cancelled():
            return False  # dropped: too many idles outstanding
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return False
        finally:
            if waiter.done():
                self._idle_waiters.pop(msg_id, None)
        return True

    def complete(
        self, code: str, cursor_pos: int | None = None, _header: Mapping[str, Any] | None = None
    ) -> ReplyFuture:
        """Ask for completions of *code* at *cursor_pos* (default: the end)."""
        pos = len(code) if cursor_pos is None else cursor_pos
        return self._send("shell", "complete_request", {"code": code, "cursor_pos": pos}, _header)

    def inspect(
        self,
        code: str,
        cursor_pos: int | None = None,
        detail_level: int = 0,
        _header: Mapping[str, Any] | None = None,
    ) -> ReplyFuture:
        """Ask for information about the object at *cursor_pos* in *code*."""
        content = {
            "code": code,
            "cursor_pos": len(code) if cursor_pos is None else cursor_pos,
            "detail_level": detail_level,
        }
        return self._send("shell", "inspect_request", content, _header)

    def history(
        self,
        raw: bool = True,
        output: bool = False,
        hist_access_type: str = "range",
        _header: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> ReplyFuture:
        """Get history entries: 'range' (session, start, stop), 'tail' (n), 'search' (pattern)."""
        if hist_access_type == "range":
            kwargs.setdefault("session", 0)
            kwargs.setdefault("start", 0)
        content = {"raw": raw, "output": output, "hist_access_type": hist_access_type, **kwargs}
        return self._send("shell", "history_request", content, _header)

    def kernel_info(self, _header: Mapping[str, Any] | None = None) -> ReplyFuture:
        """Request the kernel's info (language, implementation, protocol version)."""
        return self._send("shell", "kernel_info_request", {}, _header)

    def comm_info(
        self, target_name: str | None = None, _header: Mapping[str, Any] | None = None
    ) -> ReplyFuture:
        """List the kernel's open comms (of *target_name* only, if given)."""
        content = {} if target_name is None else {"target_name": target_name}
        return self._send("shell", "comm_info_request", content, _header)

    def is_complete(self, code: str, _header: Mapping[str, Any] | None = None) -> ReplyFuture:
        """Ask whether *code* is complete and ready to execute."""
        return self._send("shell", "is_complete_request", {"code": code}, _header)

    def shutdown(
        self, restart: bool = False, _header: Mapping[str, Any] | None = None
    ) -> ReplyFuture:
        """Ask the kernel to shut down (on the control channel, messaging spec 5.x).

        Without *restart* the exit is wanted: the owned kernel's manager gets
        ``shutdown_requested`` set (before sending), so a restarter does not relaunch it.
        With *restart* the kernel also exits and a restarter brings it back.
        """
        if not restart and self.manager is not None:
            with contextlib.suppress(AttributeError):  # a manager with __slots__ / read-only
                self.manager.shutdown_requested = True
        return self._send("control", "shutdown_request", {"restart": restart}, _header)

    async def interrupt(
        self, _header: Mapping[str, Any] | None = None, *, timeout: float | None = 10.0
    ) -> Message | None:
        """Interrupt the kernel: ``interrupt_request`` on control if its interrupt_mode is
        'message' (or we have no manager to signal it), else the manager's interrupt().

        Returns the interrupt_reply (TimeoutError if none within *timeout* seconds), or None
        when the kernel was signalled.
        """
        mode = getattr(self.manager, "interrupt_mode", None) or self.connection_info.get(
            "interrupt_mode", "signal"
        )
        if self.manager is None or mode == "message":
            fut = self._send("control", "interrupt_request", {}, _header)
            try:
                return await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                raise TimeoutError(f"no interrupt_reply within {timeout} s") from None
        self._check_usable()
        await self.manager.interrupt()
        return None

    def input(self, string: str, parent: Mapping[str, Any] | None = None) -> Done:
        """Answer the kernel's input_request with *string* (an input_reply on stdin)."""
        fut = self._send(
            "stdin", "input_reply", {"value": string}, expect_reply=False, parent=parent
        )
        return Done(fut.result() if fut.done() and not fut.exception() else None)

    # -- higher-level operations --------------------------------------------------------------

    async def wait_for_ready(self, timeout: float | None = 60.0) -> Message:
        """Wait until the kernel answers kernel_info and our IOPub subscription works.

        Ready means a kernel_info_reply plus a first IOPub message (``iopub_welcome`` from
        kernels that send it, else the status messages around kernel_info). Returns the
        kernel_info_reply. Raises :class:`KernelDied` at once if the kernel exits, and
        TimeoutError after *timeout* seconds.
        """
        self._check_usable()
        assert self._iopub_seen is not None
        iopub_seen = self._iopub_seen

        async def ready() -> Message:
            while True:
                reply = await self.kernel_info()
                if iopub_seen.is_set():
                    return reply
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(iopub_seen.wait(), IOPUB_RETRY_S)
                    return reply

        try:
            return await asyncio.wait_for(ready(), timeout)
        except TimeoutError:
            if self._died is not None:
                raise self._died from None
            raise TimeoutError(
                f"kernel did not become ready within {timeout} s "
                f"(no kernel_info_reply or no IOPub message); is it a Jupyter kernel?"
            ) from None

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

    async def shutdown_or_terminate(self, timeout: float = 5.0) -> None:
        """Ask the kernel to shut down; terminate it, then kill it, if it does not go.

        Sends shutdown_request on control and waits up to *timeout* for the reply and the
        same again for the process to exit; then SIGTERM (``manager.terminate()``) and up to
        *timeout* more; then SIGKILL, and its files are cleaned up. Safe on a kernel that
        already died.
        """
        if self.manager is None:
            if self._died is None and not self._closed:
                with contextlib.suppress(TimeoutError, KernelDied):
                    await asyncio.wait_for(self.shutdown(), timeout)
            return
        mgr = self.manager
        alive = bool(await mgr.is_alive())
        if alive and self._died is None and not self._closed:
            with contextlib.suppress(TimeoutError, KernelDied):
                await asyncio.wait_for(self.shutdown(), timeout)
            alive = bool(await mgr.wait(timeout))
        if alive:
            log.debug("kernel still alive %s s after shutdown_request; terminating", timeout)
            terminate = getattr(mgr, "terminate", None)
            with contextlib.suppress(ProcessLookupError):
                if terminate is not None:
                    await terminate()
                else:  # KernelManagerABC has no terminate(): signal() is the portable way
                    await mgr.signal(signal.SIGTERM)
            if await mgr.wait(timeout):
                log.debug("kernel ignored SIGTERM for %s s; killing", timeout)
        # Also reaps children the kernel left in its process group; a no-op otherwise.
        await mgr.kill()
        await mgr.cleanup()
