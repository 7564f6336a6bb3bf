"""Gateway kernels: what the local bridge costs, beside a bare websocket client, in one run.

A real Jupyter Kernel Gateway (``jupyter kernelgateway``, v1 websocket subprotocol) is started
on 127.0.0.1 with private Jupyter dirs and a kernelspec running this venv's ipykernel.

1. Execute round trip (``execute_request`` → ``execute_reply``, code ``pass``):
   - ours: our asyncio ``KernelClient`` on the bridge of a ``gateway/python3`` kernel
     (ZeroMQ → bridge → websocket → gateway → kernel and back);
   - bare: a websocket client speaking the v1 protocol itself on a second connection to the
     *same* gateway kernel (what any gateway client must pay). Target: ours ≤ 1.3x bare;
   - for scale: jupyter_client's ``BlockingKernelClient`` on a local ipykernel.
   Samples of ours and bare are interleaved so machine noise hits both alike.
   The gateway writes without TCP_NODELAY, so a client that delays its ACKs (Linux default)
   waits ~40 ms per reply: the bridge re-arms TCP_QUICKACK on every receive. The target is
   measured against a bare client doing the same (the transport's floor); the plain bare
   client's time is printed beside it.
2. Launch → ready through the gateway:
   - ours: ``start_kernel_async("gateway/python3")`` (POST, websocket, bridge, connection
     file, client ``wait_for_ready``);
   - bare: ``POST /api/kernels``, open the channels websocket, one ``kernel_info_request``
     answered over it (with TCP_QUICKACK). Target: ours ≤ 1.2x bare.
3. CurveZMQ: "ours" is the default, a bridge encrypting its loopback sockets (CURVE server
   on all five); "ours, no CurveZMQ" is a second bridge launched with
   ``transport_encryption = "disabled"``, measured in the same run (executes interleaved
   with the others, launches alternating), so the encryption's cost is their difference.

Run: ``.venv/bin/python benchmarks/bench_gateway.py [--launches N] [--executes N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")  # jupyter_client's platformdirs migration notice

TMP = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
for var, sub in (
    ("JUPYTER_RUNTIME_DIR", "runtime"),
    ("JUPYTER_DATA_DIR", "data"),
    ("JUPYTER_CONFIG_DIR", "config"),
    ("IPYTHONDIR", "ipython"),
):
    os.environ[var] = str(TMP / sub)
os.environ["KERNEL_MGMT_PROVIDERS"] = "gateway"
TOKEN = secrets.token_hex(16)
V1 = "v1.kernel.websocket.jupyter.org"


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def start_gateway() -> tuple[subprocess.Popen[bytes], str]:
    spec = TMP / "jupyter-path" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, JUPYTER_PATH=str(TMP / "jupyter-path"), HOME=str(TMP))
    passed = "PATH,HOME,JUPYTER_DATA_DIR,JUPYTER_CONFIG_DIR,JUPYTER_RUNTIME_DIR,IPYTHONDIR"
    cmd = [
        str(Path(sys.executable).with_name("jupyter")),
        "kernelgateway",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port_retries=0",
        f"--KernelGatewayApp.auth_token={TOKEN}",
        f"--KernelGatewayApp.env_process_whitelist={passed}",
    ]
    log = open(TMP / "gateway.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            headers = {"Authorization": f"token {TOKEN}"}
            if httpx.get(f"{url}/api", headers=headers, timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the gateway did not start: {(TMP / 'gateway.log').read_text()[-2000:]}")


def stop_gateway(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


class BareWebsocket:
    """A gateway client with nothing but httpx and websockets, speaking v1 itself."""

    def __init__(self, url: str, quickack: bool = False) -> None:
        self.url = url
        self.quickack = quickack
        self.headers = {"Authorization": f"token {TOKEN}"}
        self.session = uuid.uuid4().hex
        self.ws = None

    def _frames(self, msg_type: str, content: dict) -> tuple[str, list[bytes]]:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "username": "bench",
            "session": self.session,
            "date": "2026-01-01T00:00:00.000000Z",
            "version": "5.3",
        }
        return msg_id, [json.dumps(header).encode(), b"{}", b"{}", json.dumps(content).encode()]

    async def connect(self, kernel_id: str) -> None:
        from websockets.asyncio.client import connect

        ws_url = self.url.replace("http://", "ws://")
        self.ws = await connect(
            f"{ws_url}/api/kernels/{kernel_id}/channels?session_id={self.session}",
            additional_headers=self.headers,
            subprotocols=[V1],
            max_size=None,
            compression=None,
        )
        self._arm()

    def _arm(self) -> None:
        """TCP_QUICKACK, as our bridge sets it: ACK the gateway's frames at once (see notes)."""
        if self.quickack and hasattr(socket, "TCP_QUICKACK"):
            sock = self.ws.transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    async def request(self, channel: str, msg_type: str, content: dict) -> None:
        from kernel_mgmt_provider_gateway._wire import decode_v1, encode_v1

        msg_id, frames = self._frames(msg_type, content)
        await self.ws.send(encode_v1(channel, frames))
        while True:
            got, parts = decode_v1(await self.ws.recv())
            self._arm()
            if got == channel and json.loads(parts[1]).get("msg_id") == msg_id:
                return

    async def execute(self) -> None:
        await self.request(
            "shell",
            "execute_request",
            {
                "code": "pass",
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def bare_launch(url: str) -> tuple[float, str]:
    import httpx

    t0 = time.perf_counter()
    async with httpx.AsyncClient(headers={"Authorization": f"token {TOKEN}"}) as http:
        r = await http.post(f"{url}/api/kernels", json={"name": "python3", "env": {}})
        kernel_id = r.json()["id"]
        bare = BareWebsocket(url, quickack=True)
        await bare.connect(kernel_id)
        await bare.request("shell", "kernel_info_request", {})
        took = time.perf_counter() - t0
        await bare.close()
        await http.delete(f"{url}/api/kernels/{kernel_id}")
    return took, kernel_id


async def our_launch(finder) -> float:
    from kernel_mgmt import start_kernel_async

    t0 = time.perf_counter()
    km, kc = await start_kernel_async("gateway/python3", finder=finder)
    took = time.perf_counter() - t0
    kc.close()
    await km.kill()
    await km.cleanup()
    return took


async def execute_pair(url: str, finder, unencrypted, n: int) -> dict[str, list[float]]:
    from kernel_mgmt import start_kernel_async

    km, kc = await start_kernel_async("gateway/python3", finder=finder)
    km2, kc2 = await start_kernel_async("gateway/python3", finder=unencrypted)
    assert "curve_publickey" in kc.connection_info, "the default bridge should encrypt"
    assert "curve_publickey" not in kc2.connection_info
    plain = BareWebsocket(url)
    quick = BareWebsocket(url, quickack=True)
    await plain.connect(km.remote_kernel_id)
    await quick.connect(km.remote_kernel_id)
    samples: dict[str, list[float]] = {"ours": [], "ours nocurve": [], "plain": [], "quick": []}
    calls = {
        "ours": lambda: kc.execute("pass"),
        "ours nocurve": lambda: kc2.execute("pass"),
        "plain": plain.execute,
        "quick": quick.execute,
    }
    try:
        for _ in range(10):  # warm up every path
            for call in calls.values():
                await call()
        for _ in range(n):  # interleaved, so machine noise hits all alike
            for name, call in calls.items():
                t0 = time.perf_counter()
                await call()
                samples[name].append(time.perf_counter() - t0)
    finally:
        await plain.close()
        await quick.close()
        for client, manager in ((kc, km), (kc2, km2)):
            client.close()
            await manager.kill()
            await manager.cleanup()
    return samples


def jupyter_client_local(n: int) -> list[float]:
    from jupyter_client.manager import start_new_kernel

    os.environ["JUPYTER_PATH"] = str(TMP / "jupyter-path")  # the same kernelspec, run locally
    km, kc = start_new_kernel(kernel_name="python3")
    samples = []
    try:
        for _ in range(10):
            kc.execute("pass", reply=True, timeout=30)
        for _ in range(n):
            t0 = time.perf_counter()
            kc.execute("pass", reply=True, timeout=30)
            samples.append(time.perf_counter() - t0)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=10)
    parser.add_argument("--executes", type=int, default=200)
    args = parser.parse_args()
    proc, url = start_gateway()
    os.environ["KERNEL_MGMT_GATEWAY_URL"] = url
    os.environ["KERNEL_MGMT_GATEWAY_TOKEN"] = TOKEN
    try:
        from kernel_mgmt.discovery import KernelFinder

        os.environ.pop("KERNEL_MGMT_TRANSPORT_ENCRYPTION", None)
        finder = KernelFinder.from_entrypoints({})  # the default: auto, so encrypted
        unencrypted = KernelFinder.from_entrypoints({"transport_encryption": "disabled"})
        assert "gateway/python3" in dict(finder.find_kernels())
        assert "gateway/python3" in dict(unencrypted.find_kernels())

        async def run() -> dict[str, list[float]]:
            results: dict[str, list[float]] = {
                "launch ours": [],
                "launch ours nocurve": [],
                "launch bare": [],
            }
            await bare_launch(url)  # warm-up: the gateway's first kernel start is slower
            await our_launch(finder)
            await our_launch(unencrypted)
            order = ["ours", "ours nocurve", "bare"]
            for i in range(args.launches):
                # Rotate who goes first, and let the previous kernel's teardown finish:
                # a kernel exiting on this machine slows the next start.
                for who in order[i % 3 :] + order[: i % 3]:
                    await asyncio.sleep(0.5)
                    if who == "ours":
                        results["launch ours"].append(await our_launch(finder))
                    elif who == "ours nocurve":
                        results["launch ours nocurve"].append(await our_launch(unencrypted))
                    else:
                        results["launch bare"].append((await bare_launch(url))[0])
            pair = await execute_pair(url, finder, unencrypted, args.executes)
            results["execute ours"] = pair["ours"]
            results["execute ours nocurve"] = pair["ours nocurve"]
            results["execute bare"] = pair["quick"]
            results["execute plain"] = pair["plain"]
            return results

        results = asyncio.run(run())
        results["execute jupyter_client local"] = jupyter_client_local(args.executes)
    finally:
        stop_gateway(proc)

    med = {k: statistics.median(v) for k, v in results.items()}
    rows = [
        ("execute round trip: ours (bridge, CurveZMQ)", "execute ours", "execute bare", 1.3),
        ("execute round trip: ours, no CurveZMQ", "execute ours nocurve", "execute bare", None),
        ("execute round trip: bare websocket + TCP_QUICKACK", "execute bare", "execute bare", None),
        ("execute round trip: bare websocket, plain", "execute plain", "execute bare", None),
        (
            "execute round trip: jupyter_client, local ipykernel",
            "execute jupyter_client local",
            "execute bare",
            None,
        ),
        ("launch -> ready: ours (CurveZMQ)", "launch ours", "launch bare", 1.2),
        ("launch -> ready: ours, no CurveZMQ", "launch ours nocurve", "launch bare", None),
        ("launch -> ready: bare REST + websocket (+ QUICKACK)", "launch bare", "launch bare", None),
    ]
    head = f"{'what':<52} {'median ms':>10} {'p90 ms':>8} {'ratio':>7}  target"
    print(head)
    print("-" * len(head))
    for label, key, ref, target in rows:
        ratio = med[key] / med[ref]
        verdict = "" if target is None else f"<= {target}x {'met' if ratio <= target else 'MISSED'}"
        print(
            f"{label:<52} {med[key] * 1e3:>10.2f} {pct(results[key], 0.9) * 1e3:>8.2f} "
            f"{ratio:>6.2f}x  {verdict}"
        )
    for what in ("execute", "launch"):
        cost = med[f"{what} ours"] - med[f"{what} ours nocurve"]
        ratio = med[f"{what} ours"] / med[f"{what} ours nocurve"]
        print(f"CurveZMQ cost, {what}: {cost * 1e3:+.2f} ms per {what} ({ratio:.2f}x)")
    print(
        f"note: ratios are against the bare websocket client with TCP_QUICKACK (same gateway, "
        f"same kernel, same run); {args.executes} executes, {args.launches} launches each."
    )
    print(
        "note: the plain websocket client waits ~40 ms per reply: the gateway (tornado) writes "
        "each message as its own small TCP segment without TCP_NODELAY, and Nagle holds the "
        "next one until the client's delayed ACK; our bridge re-arms TCP_QUICKACK on every "
        "receive (Linux), as the QUICKACK client does."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
