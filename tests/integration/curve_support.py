"""Helpers for the CurveZMQ tests: real kernels launched by our providers, a recording TCP
proxy, and the three clients of the interop matrix (ours asyncio, ours blocking,
jupyter_client's BlockingKernelClient)."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from kernel_mgmt.connection import PORT_NAMES

TIMEOUT = 60
#: How long a client without the right keys is given to get anything (it must get nothing).
SHORT = 1.5
ECHO_NAME = "curve-echo"
KERNELS = ("ipykernel", "echo")
CLIENTS = ("asyncio", "blocking", "jupyter_client")


@pytest.fixture
def curve_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private Jupyter dirs, no policy from the environment; returns the runtime dir."""
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "path"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.delenv("KERNEL_MGMT_TRANSPORT_ENCRYPTION", raising=False)
    return runtime


def echo_kernels_dir(root: Path) -> Path:
    """Install the echo kernel's kernelspec with wrapper_kernel's own installer."""
    from wrapper_kernel.examples.echo import EchoKernel
    from wrapper_kernel.install import install

    install(EchoKernel, prefix=str(root), name=ECHO_NAME, module="wrapper_kernel.examples.echo")
    return root / "share" / "jupyter" / "kernels"


def finder_for(root: Path, config: dict[str, Any] | None = None) -> Any:
    """A KernelFinder with the real spec (echo kernelspec installed) and pyimport providers."""
    from kernel_mgmt.discovery import KernelFinder
    from kernel_mgmt_provider_pyimport import IPykernelProvider
    from kernel_mgmt_provider_spec import KernelSpecProvider

    spec = KernelSpecProvider([str(echo_kernels_dir(root))])
    return KernelFinder({"spec": spec, "pyimport": IPykernelProvider()}, config or {})


TYPE_IDS = {"ipykernel": "pyimport/kernel", "echo": f"spec/{ECHO_NAME}"}


@contextlib.asynccontextmanager
async def launched(finder: Any, kernel: str) -> AsyncIterator[tuple[dict[str, Any], Any]]:
    """Launch *kernel* through *finder*; kill and clean it up afterwards."""
    info, km = await finder.launch(TYPE_IDS[kernel])
    try:
        yield info, km
    finally:
        await km.kill()
        await km.cleanup()


def other_keys(info: dict[str, Any]) -> dict[str, Any]:
    """The same connection info with a fresh (wrong) key pair."""
    public, secret = zmq.curve_keypair()
    return {**info, "curve_publickey": public.decode(), "curve_secretkey": secret.decode()}


def without_keys(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if not k.startswith("curve_")}


def code_for(kernel: str, marker: str) -> tuple[str, str]:
    """Code whose output differs from its text: ``(code, expected stdout)``."""
    if kernel == "echo":  # the echo kernel streams the code back
        return marker, marker
    return f"print({marker[::-1]!r}[::-1] + '-out')", marker + "-out\n"


# -- the three clients ---------------------------------------------------------------------


async def round_trip(client: str, info: dict[str, Any], code: str) -> tuple[str, str]:
    """Execute *code* with one of CLIENTS; ``(reply status, stdout text)``."""
    if client == "asyncio":
        from kernel_mgmt.client import KernelClient

        kc = KernelClient(info, use_heartbeat=False)
        try:
            await kc.wait_for_ready(timeout=TIMEOUT)
            out: list[str] = []

            def hook(msg: Any) -> None:
                if msg.msg_type == "stream":
                    out.append(msg.content["text"])

            reply = await kc.execute_interactive(code, output_hook=hook, timeout=TIMEOUT)
            return reply.content["status"], "".join(out)
        finally:
            await kc.close()
    return await asyncio.to_thread(_blocking_round_trip, client, info, code)


def _blocking_round_trip(client: str, info: dict[str, Any], code: str) -> tuple[str, str]:
    out: list[str] = []

    def hook(msg: Any) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    if client == "blocking":
        from kernel_mgmt.client import BlockingKernelClient

        with BlockingKernelClient(info, use_heartbeat=False) as kc:
            kc.wait_for_ready(timeout=TIMEOUT)
            reply = kc.execute_interactive(code, output_hook=hook, timeout=TIMEOUT)
            return reply.content["status"], "".join(out)
    kc = jupyter_client_for(info)
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        reply = kc.execute_interactive(code, output_hook=hook, timeout=TIMEOUT)
        return reply["content"]["status"], "".join(out)
    finally:
        stop_jupyter_client(kc)


def jupyter_client_for(info: dict[str, Any], hb: bool = False) -> Any:
    """jupyter_client's BlockingKernelClient on *info* (it reads the curve keys itself).

    Its heartbeat only with ``hb=True``: without a manager, jupyter_client takes a heartbeat
    not yet answered by a starting kernel for a dead kernel.
    """
    from jupyter_client.blocking.client import BlockingKernelClient

    kc = BlockingKernelClient()
    kc.load_connection_info(dict(info))
    kc.start_channels(hb=hb)
    return kc


def stop_jupyter_client(kc: Any) -> None:
    """Stop its channels and close the event loop jupyter_client made for this thread."""
    kc.stop_channels()
    with contextlib.suppress(RuntimeError):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loop = asyncio.get_event_loop()
        if not loop.is_running():
            loop.close()
            asyncio.set_event_loop(None)


async def gets_nothing(client: str, info: dict[str, Any], code: str) -> list[str]:
    """With one of CLIENTS on *info*: ask for kernel_info and an execute, read IOPub for
    SHORT seconds; return what arrived (must be empty), after a clean timeout."""
    if client == "asyncio":
        from kernel_mgmt.client import KernelClient

        kc = KernelClient(info, use_heartbeat=False)
        seen: list[str] = []
        kc.add_handler(lambda m: seen.append(m.msg_type), ("iopub", "shell", "control"))
        try:
            with pytest.raises(TimeoutError):
                await kc.wait_for_ready(timeout=SHORT)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(kc.execute(code), SHORT)
        finally:
            await kc.close()
        return seen
    return await asyncio.to_thread(_blocking_gets_nothing, client, info, code)


def _blocking_gets_nothing(client: str, info: dict[str, Any], code: str) -> list[str]:
    seen: list[str] = []
    if client == "blocking":
        from kernel_mgmt.client import BlockingKernelClient

        with BlockingKernelClient(info, use_heartbeat=False) as kc:
            kc.add_handler(lambda m: seen.append(m.msg_type), ("iopub", "shell", "control"))
            with pytest.raises(TimeoutError):
                kc.wait_for_ready(timeout=SHORT)
            with pytest.raises(TimeoutError):
                kc.execute(code, timeout=SHORT)
        return seen
    kc = jupyter_client_for(info)
    try:
        kc.execute(code)
        kc.kernel_info()
        deadline = time.monotonic() + SHORT
        for get in (kc.get_shell_msg, kc.get_iopub_msg):
            with contextlib.suppress(queue.Empty):
                while True:
                    msg = get(timeout=max(0.05, deadline - time.monotonic()))
                    seen.append(msg["msg_type"])
    finally:
        stop_jupyter_client(kc)
    return seen


# -- a recording TCP proxy -----------------------------------------------------------------


class RecordingProxy:
    """Listens on 127.0.0.1 for each channel and relays to the kernel's port, keeping every
    byte that passes in either direction (what anyone reading loopback would see)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.target = info
        self.servers: list[asyncio.AbstractServer] = []
        self.recorded = bytearray()
        self.ports: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> dict[str, Any]:
        """Start one listener per channel; the connection info that goes through them."""
        for name in PORT_NAMES:
            server = await asyncio.start_server(
                lambda r, w, port=self.target[name]: self._relay(r, w, port), "127.0.0.1", 0
            )
            self.servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]
        return {**self.target, **self.ports}

    async def _relay(self, reader: Any, writer: Any, port: int) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", port)

        async def pump(src: Any, dst: Any) -> None:
            try:
                while data := await src.read(65536):
                    self.recorded += data
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        tasks = {
            asyncio.ensure_future(pump(reader, up_w)),
            asyncio.ensure_future(pump(up_r, writer)),
        }
        self._tasks |= tasks
        await asyncio.wait(tasks)

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)


def assert_capture(
    proxy: RecordingProxy, info: dict[str, Any], code: str, expected: str, policy: str
) -> None:
    """What a recording proxy saw of one round trip: the code and its output in plain text
    only with ``policy`` "disabled"; never the HMAC key or the Curve secret key."""
    wire = bytes(proxy.recorded)
    assert len(wire) > 200  # the handshake, kernel_info and the execute all went through it
    seen = {
        "code": code.encode() in wire,
        "output": expected.strip().encode() in wire,
        "HMAC key": info["key"].encode() in wire,
    }
    if policy == "disabled":
        # Plain text: the capture sees the code and its output (the key never travels).
        assert seen == {"code": True, "output": True, "HMAC key": False}
    else:
        assert seen == {"code": False, "output": False, "HMAC key": False}
        assert info["curve_secretkey"].encode() not in wire


def kernel_listening(pid: int) -> set[tuple[str, int]]:
    """``(address, port)`` of every TCP socket process *pid* listens on (from /proc)."""
    import os

    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        with contextlib.suppress(OSError):
            target = os.readlink(os.path.join(fd_dir, fd))
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table, family in (("tcp", 4), ("tcp6", 6)):
        with open(f"/proc/{pid}/net/{table}") as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state != "0A" or inode not in inodes:  # 0A: LISTEN
                    continue
                hex_addr, hex_port = local.split(":")
                found.add((_addr(hex_addr, family), int(hex_port, 16)))
    return found


def _addr(hex_addr: str, family: int) -> str:
    import ipaddress
    import socket

    raw = bytes.fromhex(hex_addr)
    # /proc prints addresses as host-order 32-bit words.
    words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
    packed = b"".join(words) if sys.byteorder == "little" else raw
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, packed)
    return str(ipaddress.IPv6Address(packed))
