"""The ``kernel-mgmt`` kernel provisioner: jupyter_client launches through KernelFinder.

A kernelspec whose ``metadata.kernel_provisioner`` is ``{"provisioner_name": "kernel-mgmt",
"config": {"type_id": "<provider>/<name>"}}`` is started by :meth:`KernelFinder.launch`, with
jupyter's kernel id as ours and jupyter's cwd; the provider's manager then answers every
lifecycle call (poll, wait, signal, interrupt, terminate, kill, cleanup). A restart is a new
launch under the same kernel id that keeps the old kernel's ports, key and Curve keys
(:func:`kernel_mgmt.connection.reusing_connection`; fresh ports only if one was taken
meanwhile), as jupyter_client's local provisioner does, so clients and websockets opened
before it go on working. Interrupts follow the
kernelspec's ``interrupt_mode``: ``signal`` reaches :meth:`send_signal` (SIGINT, which we pass
to the manager's ``interrupt``); for ``message`` jupyter_client's KernelManager sends
``interrupt_request`` on the control channel itself.

CurveZMQ keys are kernel_mgmt's to give (see :mod:`kernel_mgmt.curve`): its policy (config,
``$KERNEL_MGMT_TRANSPORT_ENCRYPTION``, default ``auto``) decides, because jupyter_client's
``KernelManager.transport_encryption`` defaults to ``disabled`` and would otherwise turn
encryption off for every kernel. Its ``required`` is passed on as this launch's policy: the
kernel is launched with keys, or not at all (:class:`~kernel_mgmt.curve.TransportEncryptionError`
naming the kernel type and the fix).
"""

from __future__ import annotations

import os
import pathlib
import signal
from typing import Any

from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from traitlets import Dict, Unicode

from kernel_mgmt.connection import reusing_connection
from kernel_mgmt.curve import TransportEncryptionError

from .params import ENV_PREFIX, from_env, merge_launch_params
from .specs import MARKER

__all__ = ["KernelMgmtProvisioner", "KernelTypeGone"]


class KernelTypeGone(RuntimeError):
    """The kernel type a kernelspec names is not offered any more (the message says the fix)."""


class KernelMgmtProvisioner(KernelProvisionerBase):  # type: ignore[misc]
    """Launch and manage a kernel through the kernel_mgmt provider owning its type id."""

    type_id = Unicode(
        "",
        config=True,
        help="The kernel type id ('<provider>/<name>'); set by the kernelspec's "
        "metadata.kernel_provisioner.config.",
    )
    launch_params = Dict(
        {},
        config=True,
        help="Launch parameters from jupyter config: {type id or Jupyter kernel name: "
        "{param: value}}.",
    )
    params = Dict(
        {},
        help="Launch parameters a kernelspec gives in metadata.kernel_provisioner.config.params "
        "(a kernelspec folder written for the kernel-mgmt provisioner by hand).",
    )
    env_prefix = Unicode(
        ENV_PREFIX,
        config=True,
        help="Prefix of the environment variables that set launch parameters "
        "(KERNEL_<PARAM>); empty turns them off.",
    )

    _manager: Any = None
    _exited = False
    _cwd: str | None = None
    _params: dict[str, Any] | None = None
    _encryption: str | None = None
    #: The connection of the kernel being restarted (kept by the next launch).
    _previous: dict[str, Any] | None = None

    # -- state ------------------------------------------------------------------------------

    @property
    def has_process(self) -> bool:
        """True from a launch until the kernel is found to have exited."""
        return self._manager is not None and not self._exited

    @property
    def manager(self) -> Any:
        """The provider's kernel manager for the running kernel (None before a launch)."""
        return self._manager

    async def poll(self) -> int | None:
        """None while the kernel runs, else its exit code (0 when none is known)."""
        manager = self._manager
        if manager is None or self._exited:
            return 0
        if await manager.is_alive():
            return None
        code = getattr(manager, "returncode", None)
        return code if isinstance(code, int) else 0

    async def wait(self) -> int | None:
        """Wait for the kernel to exit (callers bound it with a timeout); its exit code."""
        manager = self._manager
        if manager is None:
            return 0
        while await manager.wait(1.0):
            pass
        self._exited = True
        code = getattr(manager, "returncode", None)
        return code if isinstance(code, int) else 0

    # -- signals ----------------------------------------------------------------------------

    async def send_signal(self, signum: int) -> None:
        """Signal the kernel; SIGINT in ``signal`` interrupt mode is the manager's interrupt."""
        manager = self._manager
        if manager is None or self._exited:
            return
        if signum == signal.SIGINT and getattr(manager, "interrupt_mode", "signal") == "signal":
            await manager.interrupt()
        else:
            await manager.signal(signum)

    async def kill(self, restart: bool = False) -> None:
        """Kill the kernel (the manager's kill)."""
        if self._manager is not None and not self._exited:
            await self._manager.kill()

    async def terminate(self, restart: bool = False) -> None:
        """Ask the kernel to exit: the manager's terminate, else SIGTERM."""
        manager = self._manager
        if manager is None or self._exited:
            return
        terminate = getattr(manager, "terminate", None)
        if terminate is not None:
            await terminate()
        else:
            await manager.signal(signal.SIGTERM)

    async def shutdown_requested(self, restart: bool = False) -> None:
        """jupyter_client sent ``shutdown_request``: an exit now is not a death."""
        if self._manager is not None and not restart:
            try:
                self._manager.shutdown_requested = True
            except Exception:  # a manager without the attribute: nothing to tell it
                self.log.debug("kernel manager %r takes no shutdown_requested", self._manager)

    async def cleanup(self, restart: bool = False) -> None:
        """Release the kernel's files and ports (the manager's cleanup).

        Before a restart (jupyter_client calls ``cleanup(restart=True)``, then launches
        again) the kernel's connection is remembered, for the next launch to keep.
        """
        manager = self._manager
        if restart:
            info = getattr(manager, "connection_info", None) or self.connection_info
            self._previous = dict(info) if info else None
        else:
            self._previous = None
        if manager is not None:
            await manager.cleanup()
        if not restart:
            self._manager = None

    # -- launching --------------------------------------------------------------------------

    def _resolve_params(self, env: dict[str, str], explicit: Any) -> dict[str, Any] | None:
        metadata = getattr(self.kernel_spec, "metadata", None) or {}
        schema = metadata.get("launch_parameter_schema")
        configured = self.launch_params or {}
        by_type = configured.get(self.type_id)
        name = getattr(self.kernel_spec, "name", "") or ""
        by_name = configured.get(name) if name else None
        from_spec = self.params
        from_vars = from_env(schema, env, self.env_prefix) if self.env_prefix else {}
        return merge_launch_params(
            by_type if isinstance(by_type, dict) else None,
            by_name if isinstance(by_name, dict) else None,
            from_spec if isinstance(from_spec, dict) else None,
            from_vars or None,
            explicit,
        )

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """Work out the launch parameters; the command is the provider's to build."""
        explicit = kwargs.pop("launch_params", None)
        kwargs.pop("extra_arguments", None)
        # jupyter_client's KernelManager keeps the policy in its trait (start_kernel's
        # transport_encryption= sets it); a caller of pre_launch may also pass it here.
        encryption = kwargs.pop("transport_encryption", None)
        if encryption is None:
            encryption = getattr(self.parent, "transport_encryption", None)
        required = isinstance(encryption, str) and encryption.strip().lower() == "required"
        self._encryption = "required" if required else None
        if not self.type_id:
            raise KernelTypeGone(
                "kernelspec names the kernel-mgmt provisioner without a type_id in "
                "metadata.kernel_provisioner.config"
            )
        kwargs = await super().pre_launch(**kwargs)
        env = kwargs.get("env") or os.environ
        try:
            self._params = self._resolve_params(env, explicit)
        except ValueError as e:
            raise ValueError(f"kernel {self.type_id!r}: {e}") from None
        kwargs["cmd"] = list(getattr(self.kernel_spec, "argv", None) or [])
        return kwargs

    def _gone(self, error: Exception) -> KernelTypeGone:
        metadata = getattr(self.kernel_spec, "metadata", None) or {}
        mark = metadata.get(MARKER) or {}
        resource_dir = getattr(self.kernel_spec, "resource_dir", "") or ""
        if isinstance(mark, dict) and mark.get("synced"):
            where = mark.get("sync_target") or ""
            flag = f" {where}" if where else ""
            return KernelTypeGone(
                f"kernel type {self.type_id!r} of kernelspec {resource_dir} (written by "
                f"kernel-mgmt-jupyter sync) is not available: {error}. Run "
                f"`kernel-mgmt-jupyter sync{flag} --prune` to update the kernelspec folders, "
                "or install the provider that offered it"
            )
        return KernelTypeGone(
            f"kernel type {self.type_id!r} is not available: {error}. `kernel-mgmt list` "
            "shows the kernel types there are"
        )

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict[str, Any]:
        """Launch through the owning provider; returns jupyter_client's connection info."""
        from kernel_mgmt.discovery import NoSuchKernel

        from .finders import shared

        cwd = kwargs.get("cwd")
        cwd = os.fspath(cwd) if cwd is not None else None
        finder = shared().finder_for(self.type_id)
        km = self.parent
        previous, self._previous = self._previous, None
        try:
            # A restart keeps the ports and key, as jupyter_client's local provisioner does:
            # clients and websockets connected to the old kernel go on with the new one.
            with reusing_connection(previous):
                info, manager = await finder.launch(
                    self.type_id,
                    cwd,
                    self._params,
                    kernel_id=self.kernel_id or None,
                    transport_encryption=self._encryption,
                )
        except NoSuchKernel as e:
            raise self._gone(e) from None
        if self._encryption == "required" and not info.get("curve_publickey"):
            await _discard(manager)
            raise TransportEncryptionError(
                f"kernel {self.type_id!r} was launched without CurveZMQ keys although "
                "jupyter_client's transport_encryption is 'required' (its kernelspec sets "
                "metadata.transport_encryption to 'disabled', or its provider gives no keys); "
                "remove that option, or set KernelManager.transport_encryption to 'auto'"
            )
        self._manager, self._exited = manager, False
        self._cwd = cwd or os.getcwd()
        connection: dict[str, Any] = dict(info)
        key = connection.get("key", b"")
        connection["key"] = key.encode() if isinstance(key, str) else key
        self.connection_info = connection
        if km is not None and hasattr(km, "load_connection_info"):
            # The kernel reads the provider's connection file: jupyter_client should name
            # that one (no second copy elsewhere; the provider's manager removes it).
            path = getattr(manager, "connection_file", None)
            if path:
                km.connection_file = path
            # Loaded before jupyter_client compares it with the connection file, which may
            # be ours already (same kernel id, same runtime dir). load_connection_info keeps
            # ports that are set (a restart's old ones): clear them first, as jupyter does.
            for port in ("shell_port", "iopub_port", "stdin_port", "hb_port", "control_port"):
                setattr(km, port, 0)
            if hasattr(km, "curve_publickey"):  # a restart without keys keeps none of old
                km.curve_publickey = km.curve_secretkey = None
            km.load_connection_info(connection)
        return connection

    # -- persistence and paths --------------------------------------------------------------

    async def get_provisioner_info(self) -> dict[str, Any]:
        """The base information plus the type id."""
        info = await super().get_provisioner_info()
        info["type_id"] = self.type_id
        return info

    async def load_provisioner_info(self, provisioner_info: dict[str, Any]) -> None:
        """The inverse of :meth:`get_provisioner_info`."""
        await super().load_provisioner_info(provisioner_info)
        self.type_id = provisioner_info.get("type_id", self.type_id)

    def resolve_path(self, path: str) -> str | None:
        """``path`` relative to the kernel's working directory, if it exists."""
        resolved = pathlib.Path(path).expanduser()
        if not resolved.is_absolute() and self._cwd:
            resolved = (pathlib.Path(self._cwd) / resolved).resolve()
        return resolved.as_posix() if resolved.exists() else None


async def _discard(manager: Any) -> None:
    """Kill and clean up a kernel that must not be used (nothing of it is left)."""
    try:
        await manager.kill()
    finally:
        await manager.cleanup()
