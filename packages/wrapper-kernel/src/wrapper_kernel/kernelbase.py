"""The class a kernel author subclasses: the seed's ``Kernel`` API.

This module holds the author's side (class attributes for ``kernel_info_reply``, the ``do_*``
methods to override, ``send_response`` and output helpers, ``raw_input``); what the kernel
answers to each request is :mod:`wrapper_kernel.dispatch` (``Kernel`` inherits it), and how
messages move is :mod:`wrapper_kernel.server`. Start-up (:mod:`wrapper_kernel.kernelapp`)
sits above all three: ``Kernel.launch_instance`` calls the start-up function that
:mod:`wrapper_kernel.kernelapp` registers with :func:`set_launcher` when the package is
imported, so this module never imports it.

Start-up cost matters (a frontend waits for the first ``kernel_info_reply``), so this module
imports only the standard library and ``kernel_mgmt.protocol``; ``logging``, ``asyncio`` and
``traceback`` are imported on first use.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from kernel_mgmt.protocol import PROTOCOL_VERSION

from ._version import __version__
from .dispatch import Dispatcher
from .outstream import OutStream
from .stderr import warn as _warn

if TYPE_CHECKING:  # pragma: no cover
    import asyncio
    import logging

    from kernel_mgmt.protocol import Message, Session

    from .comms import CommManager
    from .interface import ServerHandle

__all__ = ["Kernel", "OutStream", "StdinNotImplementedError", "set_launcher"]


class StdinNotImplementedError(NotImplementedError):
    """``input()``/``raw_input()`` was called but the request did not allow stdin.

    Frontends say whether they can answer ``input_request`` with ``allow_stdin`` on each
    ``execute_request`` (messaging spec, "Execute"); nbclient, for one, says no.
    """


#: ``launcher(kernel_class, argv, **kwargs)``: runs a kernel class from the command line.
_launcher: Callable[..., None] | None = None


def set_launcher(launcher: Callable[..., None]) -> None:
    """Register the start-up function behind :meth:`Kernel.launch_instance`.

    :mod:`wrapper_kernel.kernelapp` registers ``KernelApp.launch_instance`` on import (the
    package imports it), so the layer below never imports the layer above.
    """
    global _launcher
    _launcher = launcher


class Kernel(Dispatcher):
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

    # Attached by the server before the first request (see Dispatcher._connect).
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
        self._server: ServerHandle | None = None
        self._parent: Message | None = None
        self._allow_stdin = False
        self._payloads: list[dict[str, Any]] = []
        self._loops: dict[int, asyncio.AbstractEventLoop] = {}
        self._warned: set[str] = set()
        self._kernel_info: dict[str, Any] | None = None
        self._log: logging.Logger | None = None
        self._comm_manager: CommManager | None = None

    def _kernel_info_content(self) -> dict[str, Any]:
        """The ``kernel_info_reply`` content, from the class attributes above (cached)."""
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

    # -- start-up -----------------------------------------------------------------------------

    @classmethod
    def launch_instance(cls, argv: list[str] | None = None, **kwargs: Any) -> None:
        """Run this kernel: ``-f CONNECTION_FILE``, or ``install [...]`` to install its spec."""
        if _launcher is None:  # pragma: no cover - the package registers it on import
            raise RuntimeError("wrapper_kernel.kernelapp is not imported; import wrapper_kernel")
        _launcher(argv=argv, kernel_class=cls, **kwargs)

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

    def display_object(
        self, obj: Any, *, display_id: str | None = None, update: bool = False
    ) -> None:
        """Show a Python object by its rich representation (``_repr_mimebundle_``,
        ``_repr_html_``, ... as IPython's ``display()``; an ipywidgets widget shows its
        view); a dict is taken as a ready mime bundle."""
        from .mimebundle import mime_bundle

        data, metadata = mime_bundle(obj)
        self.display(data, metadata, display_id=display_id, update=update)

    @property
    def comm_manager(self) -> CommManager:
        """This kernel's comms and comm targets (:mod:`wrapper_kernel.comms`; created on
        first use). ``comm.get_comm_manager()`` returns it while the kernel runs."""
        if self._comm_manager is None:
            from .comms import CommManager

            self._comm_manager = CommManager(self)
        return self._comm_manager

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
