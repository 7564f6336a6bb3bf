"""The two small interfaces between the socket loop and the kernel (typing only).

:mod:`wrapper_kernel.server` moves messages; :mod:`wrapper_kernel.dispatch` decides what a
kernel answers. Neither imports the other: the server calls a :class:`RequestHandler` (what
:class:`~wrapper_kernel.kernelbase.Kernel` is), the handler calls back a
:class:`ServerHandle` (what :class:`~wrapper_kernel.server.KernelServer` is). Start-up
(:mod:`wrapper_kernel.kernelapp`) creates both and connects them. As in xeus, a kernel could
be served by another loop that offers the same handle.

Imported under ``TYPE_CHECKING`` only, so it costs a kernel's start-up nothing.
"""

from __future__ import annotations

from typing import Any, Protocol

from kernel_mgmt.protocol import Message, Session

__all__ = ["IOPubChannel", "RequestHandler", "ServerHandle"]


class IOPubChannel(Protocol):
    """The IOPub socket as the kernel sees it (a zmq socket plus topic and welcome helpers)."""

    def topic(self, msg_type: str) -> bytes:
        """The topic frame for ``msg_type``."""

    def send_multipart(self, frames: list[Any], flags: int = 0, **kwargs: Any) -> None:
        """Send one message (``Session.send`` calls this)."""

    def check_subscriptions(self) -> None:
        """Answer pending subscriptions with ``iopub_welcome``."""


class ServerHandle(Protocol):
    """What the kernel uses of the loop that serves it."""

    session: Session
    iopub: IOPubChannel
    #: Reply sockets (``send_multipart``) for the shell, control and stdin channels.
    shell_socket: Any
    control_socket: Any
    stdin_socket: Any
    #: True from the start of an ``execute_request`` to its reply.
    executing: bool
    #: True while the author's ``do_execute`` runs (SIGINT raises ``KeyboardInterrupt`` there).
    in_user_code: bool
    #: An interrupt that arrived before the author's code started.
    interrupt_pending: bool

    def interrupt(self) -> None:
        """Interrupt the running ``do_execute`` (``interrupt_request``)."""

    def stop(self) -> None:
        """Stop serving after the current request (``shutdown_request``)."""

    def input_request(self, prompt: str, password: bool, parent: Message) -> str:
        """Ask the requesting client for a line on the stdin channel and wait for it."""

    def take_queued(self) -> None:
        """Set aside the executes queued behind a failed one (``stop_on_error``)."""


class RequestHandler(Protocol):
    """What the loop calls: one method per event, each on the thread that received it."""

    def _connect(self, server: ServerHandle) -> None:
        """Take the session and sockets of ``server``, before the first request."""

    def _starting(self) -> None:
        """Publish ``status: starting`` (once, before the first request)."""

    def _dispatch_shell(self, msg: Message) -> None:
        """Handle one shell request (main thread): busy, reply, idle."""

    def _dispatch_control(self, msg: Message) -> None:
        """Handle one control request (control thread), beside a busy shell."""

    def _abort_execute(self, msg: Message) -> None:
        """Answer a queued ``execute_request`` with status ``aborted`` (``stop_on_error``)."""
