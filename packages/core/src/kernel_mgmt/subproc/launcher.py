"""Launch kernels as local subprocesses (tcp or ipc transport).

``SubprocessKernelLauncher(...).launch()`` writes a connection file, starts the
kernel's command in its own session (so signals reach its whole process group) and
returns ``(connection_info, KernelManager)``. It returns as soon as the process is
spawned; readiness is the client's ``wait_for_ready``, which sees an early death via
``manager.returncode`` and ``manager.stderr_tail()``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from kernel_mgmt import connection, curve
from kernel_mgmt.subproc.manager import KernelManager

#: ``{name}`` placeholders in a kernel's argv.
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")
#: argv[0] values meaning "this interpreter", as jupyter_client reads them.
_PYTHONS = ("python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2]))
#: Name prefix of the private directories of ipc kernels' sockets (under $TMPDIR).
_IPC_PREFIX = "kernel-mgmt-ipc-"
#: Placeholders the launcher fills itself; launch params cannot override them.
RESERVED_PLACEHOLDERS = ("connection_file", "resource_dir", "prefix")


class KernelLaunchError(RuntimeError):
    """A kernel process could not be started; the message names the kernel and the fix."""


def _release_ports(info: dict[str, Any]) -> None:
    """Give back the tcp ports of a kernel that never started."""
    if info.get("transport", "tcp") == "tcp":
        connection.release_ports([info[n] for n in connection.PORT_NAMES if info.get(n)])


class SubprocessKernelLauncher:
    """Launch a kernel in a local subprocess listening on TCP ports.

    :param kernel_cmd: the argv template (``{connection_file}``, ``{resource_dir}``,
        ``{prefix}`` and launch-param placeholders are filled; ``python`` as argv[0]
        means this interpreter).
    :param cwd: working directory for the kernel (default: ours).
    :param extra_env: variables added to (a copy of) our environment.
    :param ip: address to listen on; loopback only unless *allow_remote* is True,
        because anyone who can reach the ports and read the key can run code.
    :param launch_params: values for the other ``{name}`` placeholders (already
        validated by the finder; unknown placeholders stay literal).
    :param kernel_name: the kernel type, written to the connection file and named in errors.
    :param resource_dir: the kernelspec directory, for ``{resource_dir}``.
    :param interrupt_mode: ``"signal"`` or ``"message"``, passed to the manager.
    :param kernel_id: the application's id for the kernel (a uuid by default); the
        connection file is ``kernel-<kernel_id>.json`` in the runtime directory.
    :param allow_remote: permit a non-loopback *ip* (an explicit security decision).
    :param stderr_sink: where the kernel's stderr is forwarded (default: our sys.stderr).
    :param kernel_metadata: the kernelspec's ``metadata``: ``supported_encryption`` and
        ``transport_encryption`` there decide whether the kernel gets CurveZMQ keys
        (see :mod:`kernel_mgmt.curve`).
    :param transport_encryption: ``disabled``/``auto``/``required``, overriding the
        kernelspec's option and the default (the finder's config, else ``auto``).
    """

    transport = "tcp"

    def __init__(
        self,
        kernel_cmd: list[str],
        cwd: str | None = None,
        extra_env: dict[str, str] | None = None,
        ip: str | None = None,
        launch_params: dict[str, Any] | None = None,
        *,
        kernel_name: str = "",
        resource_dir: str | None = None,
        interrupt_mode: str = "signal",
        kernel_id: str | None = None,
        allow_remote: bool = False,
        stderr_sink: IO[str] | None = None,
        kernel_metadata: dict[str, Any] | None = None,
        transport_encryption: str | None = None,
    ) -> None:
        if not kernel_cmd:
            raise KernelLaunchError(
                f"kernel {kernel_name or '(unnamed)'} has an empty argv: "
                "its kernelspec must give the command to run"
            )
        if interrupt_mode not in ("signal", "message"):
            raise ValueError(
                f"kernel {kernel_name or '(unnamed)'}: interrupt_mode must be "
                f"'signal' or 'message', not {interrupt_mode!r}"
            )
        if kernel_id is not None and (
            not kernel_id or "/" in kernel_id or os.sep in kernel_id or kernel_id in (".", "..")
        ):
            raise ValueError(f"kernel_id {kernel_id!r} must be a non-empty name without '/'")
        self.kernel_cmd = list(kernel_cmd)
        self.cwd = cwd
        self.extra_env = extra_env
        self.launch_params = launch_params
        self.kernel_name = kernel_name
        self.resource_dir = resource_dir
        self.interrupt_mode = interrupt_mode
        self._fixed_id = kernel_id is not None
        self._launched = False
        self.kernel_id = kernel_id or connection.new_uuid()
        self.stderr_sink = stderr_sink
        self.kernel_metadata = dict(kernel_metadata or {})
        self.transport_encryption = (
            None if transport_encryption is None else curve.normalize_policy(transport_encryption)
        )
        #: The Curve keys of the kernel being launched ({} without encryption).
        self._curve_keys: dict[str, str] = {}
        self.ip = self._check_ip(ip, allow_remote)

    def _check_ip(self, ip: str | None, allow_remote: bool) -> str:
        if ip is None:
            return connection.LOCALHOST
        if not allow_remote and not connection.is_loopback(ip):
            raise ValueError(
                f"kernel {self.kernel_name or '(unnamed)'}: refusing to listen on {ip!r}, "
                "which is reachable from other hosts; use a loopback address or pass "
                "allow_remote=True if that is really intended"
            )
        return ip

    # -- the seed's overridable steps -------------------------------------------------
    def make_ports(self) -> dict[str, int]:
        """Pick a free port for each of PORT_NAMES (see kernel_mgmt.connection)."""
        ports = connection.allocate_ports(self.ip, len(connection.PORT_NAMES))
        return dict(zip(connection.PORT_NAMES, ports, strict=True))

    def reuse_ports(self, previous: dict[str, Any]) -> dict[str, int] | None:
        """The previous kernel's ports, if free again (see connection.reusing_connection)."""
        return connection.reuse_tcp_ports(previous, self.ip)

    def make_connection_file(self) -> tuple[str, dict[str, Any]]:
        """Write the connection file (0600, runtime dir); return ``(path, connection_info)``.

        Inside :func:`kernel_mgmt.connection.reusing_connection` the previous kernel's ports
        (when free), key, signature scheme and Curve key pair are kept.
        """
        previous = connection.reused_connection()
        ports = self.reuse_ports(previous) if previous else None
        if ports is None:
            ports = self.make_ports()  # first: the ipc launcher sets self.ip here
        info: dict[str, Any] = {
            "transport": self.transport,
            "ip": self.ip,
            **ports,
            "key": connection.new_key(),
            "signature_scheme": "hmac-sha256",
            "kernel_name": self.kernel_name,
            **self._curve_keys,
        }
        if previous:
            info.update(connection.reused_secrets(previous, bool(self._curve_keys)))
        try:
            runtime = connection._runtime_dir()
            os.makedirs(runtime, mode=0o700, exist_ok=True)
            path = os.path.join(runtime, f"kernel-{self.kernel_id}.json")
            return connection.write_connection_file(path, **info)
        except BaseException:
            _release_ports(info)
            raise

    def format_kernel_cmd(
        self, connection_file: str, kernel_resource_dir: str | None = None
    ) -> list[str]:
        """Fill the argv template: reserved names first, then launch params.

        Unknown placeholders (and literal braces in general) are left untouched.
        """
        cmd = list(self.kernel_cmd)
        if cmd[0] in _PYTHONS:
            # The kernelspec means "a Python" (as jupyter_client reads it); this interpreter
            # is the one whose packages the application found (PATH may point elsewhere).
            cmd[0] = sys.executable
        ns: dict[str, Any] = dict(self.launch_params or {})
        ns.update(connection_file=connection_file, prefix=sys.prefix)
        resource_dir = kernel_resource_dir or self.resource_dir
        if resource_dir:
            ns["resource_dir"] = resource_dir
        else:
            ns.pop("resource_dir", None)  # reserved: never from launch params

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            return str(ns[name]) if name in ns else match.group(0)

        return [_PLACEHOLDER.sub(fill, arg) for arg in cmd]

    def build_popen_kwargs(self, connection_file: str) -> dict[str, Any]:
        """Build the keyword arguments for :class:`subprocess.Popen`."""
        env = os.environ.copy()
        # PYTHONEXECUTABLE would make a Python kernel misreport sys.executable.
        env.pop("PYTHONEXECUTABLE", None)
        if self.extra_env:
            env.update(self.extra_env)
        # ipykernel (and wrapper_kernel) exit when this process dies.
        env["JPY_PARENT_PID"] = str(os.getpid())
        kwargs: dict[str, Any] = {
            "args": self.format_kernel_cmd(connection_file),
            "cwd": self.cwd,
            "env": env,
            # Our stdin may be invalid (backgrounded app); the kernel never needs it.
            "stdin": subprocess.DEVNULL,
            # Drained by the manager: forwarded to our stderr, tail kept for errors.
            "stderr": subprocess.PIPE,
        }
        if sys.platform == "win32":  # pragma: no cover
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            # Own session and process group: interrupts reach the kernel's children,
            # and a Ctrl-C in the application's terminal does not hit the kernel.
            kwargs["start_new_session"] = True
        return kwargs

    def files_to_cleanup(
        self, connection_file: str, connection_info: dict[str, Any]
    ) -> Iterator[str]:
        """Files removed by the manager's cleanup(); overridden for ipc sockets."""
        yield connection_file

    # -- launch ----------------------------------------------------------------------
    def _describe(self) -> str:
        return f"kernel {self.kernel_name!r}" if self.kernel_name else "kernel"

    def _remove(self, paths: list[str]) -> None:
        import shutil

        for path in paths:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    async def launch(self) -> tuple[dict[str, Any], KernelManager]:
        """Start the kernel; return ``(connection_info, kernel_manager)``.

        Raises :class:`KernelLaunchError` when the program or the working directory
        does not exist or cannot be executed; nothing is left behind in that case.
        """
        if not self._fixed_id and self._launched:
            self.kernel_id = connection.new_uuid()  # a second kernel from this launcher
        self._launched = True
        # Decided before anything is allocated: 'required' for a kernel that cannot take keys
        # fails here, with nothing to clean up.
        where = f" (kernelspec in {self.resource_dir})" if self.resource_dir else ""
        self._curve_keys = curve.provision(
            (self.kernel_name or "(unnamed)") + where,
            self.transport,
            self.kernel_metadata.get("supported_encryption"),
            self.kernel_metadata,
            self.transport_encryption,
        )
        try:
            connection_file, info = self.make_connection_file()
        except OSError as e:
            self._discard_partial()
            runtime = connection._runtime_dir()
            raise KernelLaunchError(
                f"cannot start {self._describe()}: cannot write its connection file in "
                f"{runtime}: {e}. Make it writable or set JUPYTER_RUNTIME_DIR"
            ) from e
        cleanup = [connection_file]
        try:
            cleanup = list(self.files_to_cleanup(connection_file, info))
            kwargs = self.build_popen_kwargs(connection_file)
            argv = kwargs["args"]
            try:
                popen = subprocess.Popen(**kwargs)
            except OSError as e:
                raise self._launch_error(e, argv) from e
        except BaseException:
            self._remove(cleanup)
            _release_ports(info)  # else reserved (here and for other processes) for 10 min
            raise
        manager = KernelManager(
            popen,
            cleanup,
            kernel_id=self.kernel_id,
            interrupt_mode=self.interrupt_mode,
            connection_info=info,
            connection_file=connection_file,
            stderr_sink=self.stderr_sink,
        )
        return info, manager

    def _discard_partial(self) -> None:
        """Undo what a failed make_connection_file() left (overridden for ipc)."""

    def _launch_error(self, e: OSError, argv: list[str]) -> KernelLaunchError:
        what = self._describe()
        cmd = " ".join(argv)
        if self.cwd and not os.path.isdir(self.cwd):
            return KernelLaunchError(
                f"cannot start {what}: working directory {self.cwd!r} does not exist"
            )
        if isinstance(e, FileNotFoundError):
            return KernelLaunchError(
                f"cannot start {what}: program {argv[0]!r} not found (command: {cmd}). "
                "Install it, or fix argv in the kernelspec"
                + (f" in {self.resource_dir}" if self.resource_dir else "")
            )
        if isinstance(e, PermissionError):
            return KernelLaunchError(
                f"cannot start {what}: program {argv[0]!r} is not executable (command: {cmd})"
            )
        return KernelLaunchError(f"cannot start {what} (command: {cmd}): {e}")


class SubprocessIPCKernelLauncher(SubprocessKernelLauncher):
    """Launch a kernel listening on ipc (Unix domain) sockets.

    The sockets live in a private 0700 directory made for this kernel (not the
    working directory, where other users might reach them or files might clash);
    ``ip`` is the socket path prefix, as in jupyter_client. The directory is removed
    by the manager's cleanup().
    """

    transport = "ipc"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._ipc_dir: str | None = None
        super().__init__(*args, **kwargs)

    def _check_ip(self, ip: str | None, allow_remote: bool) -> str:
        # For ipc, "ip" is a filesystem path prefix; None means a private directory.
        return ip or ""

    def reuse_ports(self, previous: dict[str, Any]) -> dict[str, int] | None:
        """The previous kernel's socket paths: its private directory is made again (0700,
        only if nothing has that path: the old manager's cleanup removed it)."""
        ip, wanted = previous.get("ip"), [previous.get(n) for n in connection.PORT_NAMES]
        if previous.get("transport") != "ipc" or not ip or (self.ip and self.ip != ip):
            return None
        if not self.ip:
            folder = os.path.dirname(ip)
            if not os.path.basename(folder).startswith(_IPC_PREFIX):
                return None
            try:
                os.mkdir(folder, 0o700)
            except OSError:
                return None  # taken (by anyone), or cannot be made: a new directory
            self._ipc_dir, self.ip = folder, ip
        elif any(os.path.exists(f"{ip}-{p}") for p in wanted):
            return None
        return dict(zip(connection.PORT_NAMES, wanted, strict=True))  # type: ignore[arg-type]

    def make_ports(self) -> dict[str, int]:
        """Number the sockets 1..5 (the "port" is the suffix of ``<ip>-<port>``)."""
        if not self.ip:
            # Short path (Unix socket paths are limited to ~107 bytes): under $TMPDIR.
            self._ipc_dir = tempfile.mkdtemp(prefix=_IPC_PREFIX)  # mode 0700
            self.ip = os.path.join(self._ipc_dir, "kernel")
        ports: dict[str, int] = {}
        n = 1
        for name in connection.PORT_NAMES:
            while os.path.exists(f"{self.ip}-{n}"):
                n += 1
            ports[name] = n
            n += 1
        return ports

    def files_to_cleanup(
        self, connection_file: str, connection_info: dict[str, Any]
    ) -> Iterator[str]:
        """The connection file, each socket, then the private directory."""
        yield from super().files_to_cleanup(connection_file, connection_info)
        for name in connection.PORT_NAMES:
            yield f"{connection_info['ip']}-{connection_info[name]}"
        if self._ipc_dir:
            yield self._ipc_dir

    def _discard_partial(self) -> None:
        if self._ipc_dir:
            self._remove([self._ipc_dir])

    async def launch(self) -> tuple[dict[str, Any], KernelManager]:
        """As for tcp; each launch gets its own private socket directory."""
        if self._ipc_dir is not None:  # launched before: make a fresh directory
            self.ip, self._ipc_dir = "", None
        return await super().launch()
