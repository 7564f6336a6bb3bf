"""Comms: the kernel side of messaging spec "Custom Messages" (what ipywidgets is built on).

A comm is a two-way channel between one kernel object and one frontend object, named by a
``comm_id``. Either side opens it (``comm_open`` with a ``target_name``), both send
``comm_msg``, either closes it (``comm_close``). :class:`CommManager` holds a kernel's open
comms and its targets (a callable per ``target_name``, called for a frontend's ``comm_open``);
:class:`Comm` has the API of the ``comm`` package's ``BaseComm`` (``send``, ``close``,
``on_msg``, ``on_close``, ``comm_id``), so libraries written for ipykernel work unchanged.

While a kernel runs, the ``comm`` package's ``create_comm`` and ``get_comm_manager`` hooks
point here (see :mod:`wrapper_kernel.commhook`): ``ipywidgets`` creates its widgets' comms
through them. ipywidgets registers its targets (``jupyter.widget``,
``jupyter.widget.control``) only inside IPython; a frontend's ``comm_open`` to one of them
registers them here on demand.

Errors in a target or a handler are reported, never fatal: the kernel logs them on its
stderr and publishes an IOPub ``error`` (parent: the comm message), as ipykernel shows them.
Imported on the first comm message or the first comm opened by the kernel: never at start-up.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .stderr import warn

if TYPE_CHECKING:  # pragma: no cover
    from kernel_mgmt.protocol import Message

    from .kernelbase import Kernel

__all__ = ["Comm", "CommManager"]

MsgCallback = Callable[[dict[str, Any]], Any]
TargetCallback = Callable[["Comm", dict[str, Any]], Any]

#: Libraries whose comm targets are registered only under IPython, by target name prefix:
#: (module, function that registers them).
_LAZY_TARGETS = {"jupyter.widget": ("ipywidgets", "register_comm_target")}


class Comm:
    """One comm; ``primary=True`` (the default) opens it towards the frontend at once.

    The arguments are those of ``comm.base_comm.BaseComm``; ``manager`` is the kernel's
    :class:`CommManager` (what ``comm.create_comm`` passes while our kernel runs).
    """

    def __init__(
        self,
        target_name: str = "comm",
        data: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        buffers: list[Any] | None = None,
        comm_id: str | None = None,
        primary: bool = True,
        target_module: str | None = None,
        topic: bytes | None = None,
        _open_data: Mapping[str, Any] | None = None,
        _close_data: Mapping[str, Any] | None = None,
        *,
        manager: CommManager,
        **kwargs: Any,
    ) -> None:
        self.manager = manager
        #: ipywidgets sends only when a comm's ``kernel`` is not None.
        self.kernel = manager.kernel
        self.comm_id = comm_id or uuid.uuid4().hex
        self.primary = primary
        self.target_name = target_name
        self.target_module = target_module
        self.topic = topic or f"comm-{self.comm_id}".encode("ascii")
        self._open_data = dict(_open_data or {})
        self._close_data = dict(_close_data or {})
        self._msg_callback: MsgCallback | None = None
        self._close_callback: MsgCallback | None = None
        self._closed = True
        if primary:
            self.open(data, metadata, buffers)
        else:
            self._closed = False

    def publish_msg(
        self,
        msg_type: str,
        data: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        buffers: list[Any] | None = None,
        **keys: Any,
    ) -> None:
        """Send ``comm_open``/``comm_msg``/``comm_close`` on IOPub (parent: the request being
        handled, so a frontend shows a widget's output where the widget is)."""
        content = {"data": dict(data or {}), "comm_id": self.comm_id, **keys}
        self.manager.publish(msg_type, content, metadata, buffers)

    def open(
        self,
        data: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        buffers: list[Any] | None = None,
    ) -> None:
        """Open the frontend's side (``comm_open`` to ``target_name``)."""
        self.manager.register_comm(self)
        try:
            self.publish_msg(
                "comm_open",
                self._open_data if data is None else data,
                metadata,
                buffers,
                target_name=self.target_name,
                target_module=self.target_module,
            )
        except Exception:
            self.manager.unregister_comm(self)
            raise
        self._closed = False

    def send(
        self,
        data: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        buffers: list[Any] | None = None,
    ) -> None:
        """Send ``data`` to the frontend's side (``comm_msg``)."""
        self.publish_msg("comm_msg", data, metadata, buffers)

    def close(
        self,
        data: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        buffers: list[Any] | None = None,
        deleting: bool = False,
    ) -> None:
        """Close both sides (``comm_close``); closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        data = self._close_data if data is None else data
        self.publish_msg("comm_close", data, metadata, buffers)
        if not deleting:
            self.manager.unregister_comm(self)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # during interpreter teardown anything may fail
            self.close(deleting=True)

    def on_msg(self, callback: MsgCallback | None) -> None:
        """Call ``callback(msg)`` for each ``comm_msg`` from the frontend (None: stop)."""
        self._msg_callback = callback

    def on_close(self, callback: MsgCallback | None) -> None:
        """Call ``callback(msg)`` when the frontend closes the comm (None: stop)."""
        self._close_callback = callback

    def handle_msg(self, msg: dict[str, Any]) -> None:
        if self._msg_callback is not None:
            self._msg_callback(msg)

    def handle_close(self, msg: dict[str, Any]) -> None:
        if self._close_callback is not None:
            self._close_callback(msg)


class CommManager:
    """A kernel's open comms and comm targets (the ``comm`` package's ``CommManager`` API)."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.comms: dict[str, Comm] = {}
        self.targets: dict[str, TargetCallback] = {}

    # -- the comm package's API -------------------------------------------------------------------

    def register_target(self, target_name: str, f: TargetCallback | str) -> None:
        """Call ``f(comm, msg)`` when the frontend opens a comm to ``target_name``;
        ``f`` may be an import string (``"package.module.function"``)."""
        if isinstance(f, str):
            module_name, _, attr = f.rpartition(".")
            module = __import__(module_name or attr, fromlist=[attr] if module_name else [])
            f = getattr(module, attr) if module_name else module
        self.targets[target_name] = f  # type: ignore[assignment]

    def unregister_target(self, target_name: str, f: Any = None) -> TargetCallback:
        return self.targets.pop(target_name)

    def register_comm(self, comm: Comm) -> str:
        self.comms[comm.comm_id] = comm
        return comm.comm_id

    def unregister_comm(self, comm: Comm) -> None:
        self.comms.pop(comm.comm_id, None)

    def get_comm(self, comm_id: str) -> Comm | None:
        return self.comms.get(comm_id)

    def new_comm(self, target_name: str, data: Mapping[str, Any] | None = None, **kw: Any) -> Comm:
        """Open a comm from the kernel to the frontend's ``target_name``."""
        return Comm(target_name, data, manager=self, **kw)

    # -- what the kernel calls ----------------------------------------------------------------

    def publish(
        self,
        msg_type: str,
        content: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        buffers: list[Any] | None = None,
    ) -> None:
        kernel = self.kernel
        iopub = kernel.iopub_socket
        kernel.session.send(
            iopub,
            msg_type,
            content,
            parent=kernel._parent,
            idents=[iopub.topic(msg_type)],
            metadata=metadata,
            buffers=buffers,
        )

    def info(self, target_name: str | None = None) -> dict[str, dict[str, str]]:
        """``comm_info_reply``'s ``comms``: open comms, those of ``target_name`` if given."""
        return {
            cid: {"target_name": c.target_name}
            for cid, c in list(self.comms.items())
            if not target_name or c.target_name == target_name
        }

    def handle(self, msg: Message) -> None:
        """A frontend's ``comm_open``, ``comm_msg`` or ``comm_close``."""
        c = msg.content
        comm_id = c.get("comm_id")
        if not isinstance(comm_id, str) or not comm_id:
            warn(f"{msg.msg_type} without a comm_id; ignored")
            return
        if msg.msg_type == "comm_open":
            self._open(comm_id, str(c.get("target_name", "")), msg)
            return
        comm = self.comms.get(comm_id)
        if comm is None:
            warn(f"{msg.msg_type} for unknown comm {comm_id}; ignored")
            return
        if msg.msg_type == "comm_msg":
            self._call(comm.handle_msg, msg, f"comm_msg handler of comm {comm_id}")
        else:
            comm._closed = True
            self.comms.pop(comm_id, None)
            self._call(comm.handle_close, msg, f"comm_close handler of comm {comm_id}")

    def _open(self, comm_id: str, target_name: str, msg: Message) -> None:
        target = self.targets.get(target_name) or self._lazy_target(target_name)
        comm = Comm(target_name, comm_id=comm_id, primary=False, manager=self)
        self.register_comm(comm)
        if target is None:
            warn(f"comm_open to unknown target {target_name!r}; closed")
        elif self._call(target, msg, f"comm target {target_name!r}", comm):
            return
        # Spec ("Opening a Comm"): a comm that cannot be opened is closed, so the frontend
        # does not wait on it.
        comm.close()

    def _lazy_target(self, target_name: str) -> TargetCallback | None:
        for prefix, (module, register) in _LAZY_TARGETS.items():
            if target_name.startswith(prefix) and module in sys.modules:
                with contextlib.suppress(Exception):
                    getattr(sys.modules[module], register)()
        return self.targets.get(target_name)

    def _call(self, handler: Callable[..., Any], msg: Message, what: str, *first: Any) -> bool:
        """Run an author's handler; an exception is reported (stderr and IOPub ``error``)."""
        try:
            self.kernel._resolve(handler(*first, msg))
            return True
        except Exception as e:
            from .tracebacks import error_content

            content = error_content(e)
            warn(f"{what} raised {content['ename']}: {content['evalue']}")
            with contextlib.suppress(Exception):
                err = {k: content[k] for k in ("ename", "evalue", "traceback")}
                self.kernel._publish("error", err)
            return False
