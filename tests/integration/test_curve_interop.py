"""CurveZMQ interop matrix: {our launcher → ipykernel, our launcher → wrapper echo kernel}
times {our asyncio client, our blocking client, jupyter_client's BlockingKernelClient}.

Each kernel is launched through a KernelFinder with the real pyimport and spec providers (the
echo kernelspec installed by wrapper_kernel's own installer) under the default policy
(``auto``); both kernels declare support, so their connection files carry Curve keys. Every
client must complete an execute round trip; the same client with a wrong key pair, or
without keys, must get nothing at all (no reply, no IOPub message) and time out cleanly.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kernel_mgmt.connection import read_connection_file
from kernel_mgmt.curve import Z85_KEY_LENGTH

from .curve_support import (
    CLIENTS,
    KERNELS,
    code_for,
    curve_env,  # noqa: F401  (fixture, used below)
    finder_for,
    gets_nothing,
    launched,
    other_keys,
    round_trip,
    without_keys,
)

pytestmark = pytest.mark.usefixtures("curve_env")


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("kernel", KERNELS)
async def test_encrypted_round_trip_and_keyless_clients_get_nothing(
    tmp_path: Path, kernel: str, client: str
) -> None:
    finder = finder_for(tmp_path)
    async with launched(finder, kernel) as (info, km):
        # The launcher provisioned a Z85 key pair, in the 0600 connection file too.
        assert len(info["curve_publickey"]) == len(info["curve_secretkey"]) == Z85_KEY_LENGTH
        on_disk = read_connection_file(km.connection_file)
        assert on_disk["curve_secretkey"] == info["curve_secretkey"]

        code, expected = code_for(kernel, "matrix-marker")
        status, out = await round_trip(client, info, code)
        assert (status, out) == ("ok", expected)

        # A second, correctly keyed client runs code (so IOPub has traffic) while the
        # keyless and wrongly keyed ones listen: they must see none of it.
        for bad in (other_keys(info), without_keys(info)):
            busy = asyncio.ensure_future(round_trip("asyncio", info, code))
            seen = await gets_nothing(client, bad, code)
            assert seen == []
            assert await busy == ("ok", expected)

        # The kernel is still fine for a keyed client afterwards.
        assert (await round_trip(client, info, code))[0] == "ok"


@pytest.mark.parametrize("kernel", KERNELS)
async def test_our_heartbeat_speaks_curve(tmp_path: Path, kernel: str) -> None:
    """A client without a manager watches the kernel by heartbeat: over CURVE it keeps
    seeing pongs (a heartbeat socket without keys would declare the kernel dead)."""
    from kernel_mgmt.client import KernelClient

    finder = finder_for(tmp_path)
    async with launched(finder, kernel) as (info, _km):
        kc = KernelClient(info, use_heartbeat=True)
        kc.hb_interval, kc.time_to_dead = 0.1, 0.5
        try:
            await kc.wait_for_ready(timeout=60)
            # Many heartbeat periods, each of which would count a miss without keys.
            await asyncio.sleep(kc.hb_misses * kc.time_to_dead * 3)
            assert kc.died is None
            assert await kc.is_alive()
        finally:
            await kc.close()

        # The same client with a wrong server key: the heartbeat gets no pong, and the
        # client declares the kernel dead once it has heard from it... which it never does,
        # so it just times out. Its own heartbeat socket is checked directly instead.
        import zmq

        from kernel_mgmt.connection import channel_url
        from kernel_mgmt.curve import apply_client_options, curve_keys

        ctx = zmq.Context.instance()
        for keyed in (info, other_keys(info)):
            sock = ctx.socket(zmq.REQ)
            sock.linger = 0
            keys = curve_keys(keyed)
            assert keys is not None
            apply_client_options(sock, keys)
            sock.connect(channel_url(info, "hb"))
            sock.send(b"ping")
            got = await asyncio.to_thread(sock.poll, 3000 if keyed is info else 1000)
            sock.close()
            assert bool(got) == (keyed is info)


async def test_jupyter_client_heartbeat_on_our_kernel(tmp_path: Path) -> None:
    """jupyter_client's HBChannel (a fresh client key pair, our public key as server key)
    keeps beating against the wrapper kernel's CURVE heartbeat."""
    from .curve_support import jupyter_client_for, stop_jupyter_client

    def check(info: dict) -> None:
        import time

        kc = jupyter_client_for(info, hb=False)
        try:
            kc.wait_for_ready(60)
            kc.hb_channel.start()  # now that the kernel answers
            time.sleep(3.5)  # several of its 1 s beats (3 missed ones would stop it)
            assert kc.hb_channel.is_beating()
        finally:
            stop_jupyter_client(kc)

    finder = finder_for(tmp_path)
    async with launched(finder, "echo") as (info, _km):
        await asyncio.to_thread(check, info)


async def test_jupyter_client_manager_launches_our_kernel_encrypted(tmp_path: Path) -> None:
    """The other direction: jupyter_client's KernelManager with transport_encryption=
    'required' starts the wrapper echo kernel from the kernelspec our installer wrote (it
    declares supported_encryption) and our client talks to it with the keys it wrote."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    from kernel_mgmt.client import KernelClient

    from .curve_support import ECHO_NAME, echo_kernels_dir

    kernels = echo_kernels_dir(tmp_path)
    ksm = KernelSpecManager(kernel_dirs=[str(kernels)])
    km = AsyncKernelManager(
        kernel_name=ECHO_NAME, kernel_spec_manager=ksm, transport_encryption="required"
    )
    await km.start_kernel()
    try:
        info = km.get_connection_info()
        assert info["curve_publickey"]
        info = {k: v.decode() if isinstance(v, bytes) else v for k, v in info.items()}
        kc = KernelClient(info, use_heartbeat=False)
        try:
            await kc.wait_for_ready(timeout=60)
            reply = await kc.execute_interactive("both ways", output_hook=lambda m: None)
            assert reply.content["status"] == "ok"
        finally:
            await kc.close()
        for bad in (other_keys(info), without_keys(info)):
            assert await gets_nothing("asyncio", bad, "x") == []
    finally:
        await km.shutdown_kernel(now=True)
