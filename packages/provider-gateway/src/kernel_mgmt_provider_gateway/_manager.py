"""The kernel manager of a gateway kernel, and the launch that makes one.

Lifecycle calls map to the gateway's REST API: ``interrupt`` → ``POST .../interrupt``,
``kill``/``terminate`` → ``DELETE``; ``is_alive``/``wait`` follow the remote kernel as the
bridge sees it (websocket, IOPub status, polling); ``cleanup`` closes the bridge (and deletes
the remote kernel if that was not done yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import signal as _signal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kernel_mgmt.managerabc import KernelManagerABC

from ._remote import GatewayLaunchError, RemoteKernel

if TYPE_CHECKING:  # pragma: no cover
    from ._config import GatewayConfig

__all__ = ["GatewayKernelManager", "kernel_env", "launch_kernel"]


class GatewayKernelManager(KernelManagerABC):
    """Manages one kernel on a Jupyter Kernel Gateway or Enterprise Gateway."""

    #: Interrupts always go through the gateway's REST API (it knows the kernel's mode).
    interrupt_mode = "signal"

    def __init__(self, remote: RemoteKernel, kernel_id: str) -> None:
        self.remote = remote
        self.kernel_id = kernel_id
        self.shutdown_requested = False
        #: None: a remote kernel's exit code is not reported by the gateway.
        self.returncode: int | None = None

    @property
    def remote_kernel_id(self) -> str | None:
        """The kernel's id on the gateway (``/api/kernels/<id>``)."""
        return self.remote.remote_id

    @property
    def gateway_url(self) -> str:
        return self.remote.config.base_url

    @property
    def connection_file(self) -> str | None:
        return self.remote.connection_file

    @property
    def death_reason(self) -> str | None:
        """Why the kernel is gone (deleted, culled, shut down...), None while it lives."""
        return self.remote.dead_reason if self.remote.is_dead() else None

    def __repr__(self) -> str:
        return f"<GatewayKernelManager {self.remote.label} remote id {self.remote_kernel_id}>"

    async def is_alive(self) -> bool:
        return not self.remote.is_dead()

    async def wait(self, timeout: float | None = None) -> bool:
        await self.remote.wait_dead(timeout)
        return not self.remote.is_dead()

    async def signal(self, signum: int) -> None:
        """SIGINT interrupts, SIGTERM/SIGKILL delete the kernel; other signals cannot be sent."""
        if signum == _signal.SIGINT:
            await self.interrupt()
        elif signum in (_signal.SIGTERM, _signal.SIGKILL):
            await self.kill()
        else:
            raise NotImplementedError(
                f"{self.remote.label}: a gateway kernel takes only SIGINT (interrupt) and "
                f"SIGTERM/SIGKILL (delete), not signal {signum}"
            )

    async def interrupt(self) -> None:
        if not self.remote.is_dead():
            await self.remote.call(self.remote.interrupt())

    async def kill(self) -> None:
        self.shutdown_requested = True
        if self.remote.loop.is_running():
            await self.remote.call(self.remote.delete())

    async def terminate(self) -> None:
        """The gateway shuts a deleted kernel down gracefully itself: same as :meth:`kill`."""
        await self.kill()

    async def cleanup(self) -> None:
        await asyncio.to_thread(self.remote.close)


def kernel_env(
    config: GatewayConfig,
    cwd: str | None,
    launch_params: Mapping[str, Any] | None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The ``env`` of ``POST /api/kernels``.

    ``kernel_env`` variables from our environment (``KERNEL_USERNAME`` defaults to the login
    name), ``KERNEL_WORKING_DIR`` from ``cwd`` when one is given, and each launch parameter
    as ``KERNEL_<NAME>`` (upper case; strings as they are, other values as JSON). Gateways pass
    ``KERNEL_*`` variables on to the kernel (and Enterprise Gateway reads its settings there).
    """
    env_in = os.environ if environ is None else environ
    env: dict[str, str] = {}
    for name in config.kernel_env:
        if name in env_in:
            env[name] = env_in[name]
    if "KERNEL_USERNAME" in config.kernel_env and "KERNEL_USERNAME" not in env:
        with contextlib.suppress(KeyError, OSError):  # no login name (an arbitrary uid)
            env["KERNEL_USERNAME"] = getpass.getuser()
    if cwd is not None:
        env["KERNEL_WORKING_DIR"] = os.fspath(cwd)
    for key, value in (launch_params or {}).items():
        name = str(key).upper()
        if not name.startswith("KERNEL_"):
            name = "KERNEL_" + name
        env[name] = value if isinstance(value, str) else json.dumps(value)
    return env


async def launch_kernel(
    config: GatewayConfig,
    name: str,
    cwd: str | None,
    launch_params: Mapping[str, Any] | None,
    kernel_id: str | None,
    transport_encryption: str | None = None,
) -> tuple[dict[str, Any], GatewayKernelManager]:
    """Start kernelspec ``name`` on the gateway; ``(connection_info, manager)`` of its bridge.

    The bridge gets CurveZMQ keys as our wrapper kernels do (it declares support): unless
    the policy is ``disabled`` — *transport_encryption*, else the finder's config (its
    ``policy_scope``), else ``$KERNEL_MGMT_TRANSPORT_ENCRYPTION``, else ``auto``. Decided
    here, in the caller's context, before anything starts.

    :raises GatewayLaunchError: the gateway refused or failed to start it, or its websocket
        could not be opened (nothing is left running on either side).
    :raises kernel_mgmt.curve.TransportEncryptionError: encryption is required but this
        pyzmq cannot do CurveZMQ, or ``$KERNEL_MGMT_TRANSPORT_ENCRYPTION`` is not a policy.
    """
    from kernel_mgmt.curve import provision

    label = f"gateway/{name}"
    keys = provision(label, "tcp", ["curve"], None, transport_encryption)
    env = kernel_env(config, cwd, launch_params)
    remote = RemoteKernel(config, name, label, keys)
    try:
        info = await remote.call(remote.open(env, kernel_id))
    except BaseException as e:
        await asyncio.shield(asyncio.to_thread(remote.close))
        if isinstance(e, GatewayLaunchError):
            raise GatewayLaunchError(str(e), e.status) from None
        raise
    manager = GatewayKernelManager(remote, kernel_id or remote.remote_id or "")
    return info, manager
