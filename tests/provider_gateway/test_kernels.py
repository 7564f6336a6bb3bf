"""Gateway kernels through the local bridge: our clients, jupyter_client's, the CLI."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from kernel_mgmt import run_kernel_async, run_kernel_blocking
from kernel_mgmt.client_base import KernelDied
from kernel_mgmt.curve import apply_client_options, curve_keys
from kernel_mgmt.discovery import InvalidLaunchParams, KernelFinder

from .conftest import Gateway

BIN = Path(sys.executable).parent
# A 1x1 PNG, and code that shows it (display_data) and sends it as a binary buffer (comm).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
SHOW_PNG = textwrap.dedent(
    f"""
    import base64
    from IPython.display import Image, display
    png = base64.b64decode({base64.b64encode(PNG).decode()!r})
    display(Image(data=png, format="png"))
    from comm import create_comm
    c = create_comm(target_name="bridge-test", data={{"n": 1}}, buffers=[png, b"\\x00\\xff"])
    """
)


def _ports_free(info: dict[str, Any]) -> bool:
    """Whether none of the bridge's ports has a socket of this process left (closed)."""
    import psutil

    ports = {info[n] for n in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")}
    mine = psutil.Process().net_connections(kind="tcp")
    return not [c for c in mine if c.laddr and c.laddr.port in ports and c.status == "LISTEN"]


def test_execute_interactive_outputs_and_buffers(gateway: Gateway) -> None:
    outputs: list[Any] = []
    with run_kernel_blocking("gateway/python3") as kc:
        info = dict(kc.connection_info)
        assert info["ip"] == "127.0.0.1" and info["transport"] == "tcp"
        reply = kc.execute_interactive(
            "print('hello', 6 * 7)\n6 * 7", output_hook=outputs.append, timeout=60
        )
        assert reply.content["status"] == "ok"
        reply = kc.execute_interactive(SHOW_PNG, output_hook=outputs.append, timeout=60)
        assert reply.content["status"] == "ok", reply.content
    by_type: dict[str, list[Any]] = {}
    for msg in outputs:
        by_type.setdefault(msg.msg_type, []).append(msg)
    assert by_type["stream"][0].content == {"name": "stdout", "text": "hello 42\n"}
    assert by_type["execute_result"][0].content["data"]["text/plain"] == "42"
    (display,) = by_type["display_data"]
    assert base64.b64decode(display.content["data"]["image/png"]) == PNG
    (comm,) = by_type["comm_open"]
    assert comm.content["data"] == {"n": 1} and comm.content["target_name"] == "bridge-test"
    assert [bytes(b) for b in comm.buffers] == [PNG, b"\x00\xff"]
    # Headers pass through: the kernel's own msg_id/session, our request as parent.
    assert all(m.parent_header.get("msg_type") == "execute_request" for m in outputs)
    assert len({m.header["session"] for m in outputs}) == 1
    assert _ports_free(info)


def test_input_complete_inspect(gateway: Gateway) -> None:
    prompts: list[str] = []

    def answer(msg: Any) -> str:
        prompts.append(msg.content["prompt"])
        return "forty-two"

    outputs: list[Any] = []
    with run_kernel_blocking("gateway/python3") as kc:
        reply = kc.execute_interactive(
            "name = input('who? ')\nprint('got', name)",
            allow_stdin=True,
            stdin_hook=answer,
            output_hook=outputs.append,
            timeout=60,
        )
        assert reply.content["status"] == "ok"
        complete = kc.complete("import collections; collections.Ord", 34)
        inspect = kc.inspect("len", 3)
    assert prompts == ["who? "]
    assert any(m.content.get("text") == "got forty-two\n" for m in outputs)
    assert "OrderedDict" in [m.rsplit(".", 1)[-1] for m in complete.content["matches"]]
    assert inspect.content["found"] is True
    assert "Return the number of items" in inspect.content["data"]["text/plain"]


def test_interrupt_sleep(gateway: Gateway) -> None:
    with run_kernel_blocking("gateway/python3") as kc:

        async def interrupted() -> Any:
            client = kc.loop_client
            fut = client.execute("import time; time.sleep(30)")
            await asyncio.sleep(1.0)  # let it start sleeping
            await client.interrupt()
            return await asyncio.wait_for(fut, 30)

        reply = kc._thread.run(interrupted(), 60, "interrupt")
        assert reply.content["status"] == "error"
        assert reply.content["ename"] == "KeyboardInterrupt"
        assert kc.execute_interactive("1 + 1", timeout=30).content["status"] == "ok"
        assert kc._thread.run(kc.manager.is_alive(), 10, "is_alive")


async def test_deleted_from_outside_fails_pending_request(gateway: Gateway) -> None:
    async with run_kernel_async("gateway/python3") as kc:
        manager = kc.manager
        remote_id = manager.remote_kernel_id
        assert [k["id"] for k in gateway.kernels()] == [remote_id]
        pending = kc.execute("import time; time.sleep(30)")
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(headers=gateway.headers) as http:
            r = await http.delete(f"{gateway.url}/api/kernels/{remote_id}", timeout=30)
        assert r.status_code == 204
        deleted = time.monotonic()
        with pytest.raises(KernelDied, match="gateway/python3"):
            await asyncio.wait_for(pending, 20)
        took = time.monotonic() - deleted
        print(f"KernelDied {took:.2f} s after the DELETE returned ({manager.death_reason})")
        assert not await manager.is_alive()
        assert manager.death_reason  # says how: shutdown_reply, or no longer on the gateway
    assert gateway.kernels() == []


async def test_heartbeat_only_while_alive(kg: Gateway) -> None:
    import zmq
    import zmq.asyncio

    finder = KernelFinder.from_entrypoints({})
    info, manager = await finder.launch("gateway/python3")
    ctx = zmq.asyncio.Context()
    try:

        async def ping() -> bool:
            sock = ctx.socket(zmq.REQ)
            sock.linger = 0
            keys = curve_keys(info)  # the bridge is a CURVE server (encryption is on)
            assert keys is not None
            apply_client_options(sock, keys)
            sock.connect(f"tcp://127.0.0.1:{info['hb_port']}")
            try:
                await sock.send(b"ping")
                return await asyncio.wait_for(sock.recv(), 3) == b"ping"
            except TimeoutError:
                return False
            finally:
                sock.close()

        assert await ping()
        path = Path(manager.connection_file)
        assert path.parent == Path(os.environ["JUPYTER_RUNTIME_DIR"])
        assert path.stat().st_mode & 0o777 == 0o600
        assert json.loads(path.read_text()) == info
        await manager.kill()
        assert not await manager.is_alive()
        assert not await ping()
        assert kg.kernels() == []
    finally:
        await manager.cleanup()
        ctx.term()
    assert _ports_free(info)
    assert not os.path.exists(manager.connection_file)


def test_jupyter_client_on_the_bridge(gateway: Gateway) -> None:
    from jupyter_client.blocking.client import BlockingKernelClient as JupyterClient

    with run_kernel_blocking("gateway/python3") as kc:
        jc = JupyterClient()
        jc.load_connection_info(dict(kc.connection_info))
        jc.start_channels()
        try:
            jc.wait_for_ready(timeout=60)
            outputs: list[dict[str, Any]] = []
            reply = jc.execute_interactive("print(6 * 7)", output_hook=outputs.append, timeout=60)
            assert reply["content"]["status"] == "ok"
            assert any(o["content"].get("text") == "42\n" for o in outputs)
            assert jc.is_alive()
        finally:
            jc.stop_channels()


def test_cli_run_prints_42(gateway: Gateway) -> None:
    out = subprocess.run(
        [str(BIN / "kernel-mgmt"), "run", "gateway/python3", "-c", "print(6 * 7)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "42\n"
    assert gateway.kernels() == []


def test_exit_deletes_remote_kernels(gateway: Gateway, tmp_path: Path) -> None:
    """An application that exits without shutting its kernels down deletes them on the way."""
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio
            from kernel_mgmt.discovery import KernelFinder

            async def main():
                finder = KernelFinder.from_entrypoints({})
                _info, km = await finder.launch("gateway/python3")
                print(km.remote_kernel_id, flush=True)

            asyncio.run(main())
            """
        )
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    remote_id = out.stdout.strip()
    assert remote_id and remote_id not in [k["id"] for k in gateway.kernels()]
    runtime = Path(os.environ["JUPYTER_RUNTIME_DIR"])
    assert not list(runtime.glob("kernel-*.json"))


async def test_launch_params_cwd_and_kernel_env(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERNEL_USERNAME", "alice")
    work = tmp_path / "work"
    work.mkdir()
    finder = KernelFinder.from_entrypoints({})
    with pytest.raises(InvalidLaunchParams, match="kernel_flavour"):
        await finder.launch("gateway/python3", launch_params={"kernel_flavour": 3})
    assert gateway.kernels() == []  # nothing started for invalid parameters
    async with run_kernel_async(
        "gateway/python3", cwd=str(work), launch_params={"kernel_flavour": "spicy"}
    ) as kc:
        code = (
            "import os, json; print(json.dumps({k: os.environ.get(k) for k in "
            "('KERNEL_FLAVOUR', 'KERNEL_USERNAME', 'KERNEL_WORKING_DIR')}))"
        )
        outputs: list[Any] = []
        reply = await kc.execute_interactive(code, output_hook=outputs.append, timeout=60)
        assert reply.content["status"] == "ok"
    seen = json.loads(next(m.content["text"] for m in outputs if m.msg_type == "stream"))
    assert seen == {
        "KERNEL_FLAVOUR": "spicy",
        "KERNEL_USERNAME": "alice",
        "KERNEL_WORKING_DIR": str(work),
    }


async def test_badly_signed_messages_are_dropped(kg: Gateway) -> None:
    from kernel_mgmt.client import KernelClient

    async with run_kernel_async("gateway/python3") as kc:
        wrong = dict(kc.connection_info, key="0" * 64)
        intruder = KernelClient(wrong)
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(intruder.kernel_info(), 2)
        finally:
            intruder.close()
        assert (await kc.kernel_info()).content["status"] == "ok"


def test_legacy_json_protocol(kg_json: Gateway) -> None:
    outputs: list[Any] = []
    with run_kernel_blocking("gateway/python3") as kc:
        assert kc.manager.remote.bridge.v1 is False  # the server offered no v1 subprotocol
        reply = kc.execute_interactive(SHOW_PNG, output_hook=outputs.append, timeout=60)
        assert reply.content["status"] == "ok"
        reply = kc.execute_interactive(
            "print(input('? ') * 2)",
            allow_stdin=True,
            stdin_hook=lambda msg: "ab",
            output_hook=outputs.append,
            timeout=60,
        )
        assert reply.content["status"] == "ok"
    (comm,) = [m for m in outputs if m.msg_type == "comm_open"]
    assert [bytes(b) for b in comm.buffers] == [PNG, b"\x00\xff"]
    (display,) = [m for m in outputs if m.msg_type == "display_data"]
    assert base64.b64decode(display.content["data"]["image/png"]) == PNG
    assert any(m.content.get("text") == "abab\n" for m in outputs)


async def test_kernel_killed_on_the_gateway_side(gateway: Gateway) -> None:
    """The remote kernel process dies (SIGKILL): the gateway restarts it, its state is lost,
    so the pending request fails with KernelDied as a local kernel's would."""
    import signal

    async with run_kernel_async("gateway/python3") as kc:
        outputs: list[Any] = []
        await kc.execute_interactive(
            "import os; print(os.getpid())", output_hook=outputs.append, timeout=60
        )
        pid = int(next(m.content["text"] for m in outputs if m.msg_type == "stream"))
        pending = kc.execute("import time; time.sleep(30)")
        await asyncio.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(KernelDied):
            await asyncio.wait_for(pending, 30)
        assert not await kc.manager.is_alive()
        assert kc.manager.death_reason


async def test_user_not_allowed_by_the_gateway(
    gateways: dict[str, Gateway], local_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eg = gateways["eg"]
    monkeypatch.setenv("KERNEL_MGMT_GATEWAY_URL", eg.url)
    monkeypatch.setenv("KERNEL_MGMT_GATEWAY_TOKEN", eg.token)
    monkeypatch.setenv("KERNEL_USERNAME", "nobody")
    import kernel_mgmt_provider_gateway as provider

    provider.load_config({})
    finder = KernelFinder.from_entrypoints({})
    with pytest.raises(provider.GatewayLaunchError) as info:
        await finder.launch("gateway/python3")
    message = str(info.value)
    assert "HTTP 403 Forbidden" in message and eg.url in message
    assert "set KERNEL_USERNAME to a user it allows" in message
    assert eg.token not in message
    assert eg.kernels() == []


@pytest.mark.parametrize("after", [0.0, 0.05, 0.3, 1.0])
async def test_launch_given_up_leaves_nothing(kg: Gateway, after: float) -> None:
    """A launch cancelled at any point (during the POST, the websocket, the bridge) deletes
    whatever it had started on the gateway and closes what it had opened here."""
    finder = KernelFinder.from_entrypoints({})
    list(finder.find_kernels())
    task = asyncio.ensure_future(finder.launch("gateway/python3"))
    await asyncio.sleep(after)
    task.cancel()
    try:
        _info, manager = await task
    except asyncio.CancelledError:
        pass
    else:  # it was quicker than the cancel
        await manager.kill()
        await manager.cleanup()
    # The fixture checks the gateway's /api/kernels, bridge threads and connection files.


async def test_restarter_replaces_a_kernel_deleted_on_the_gateway(kg: Gateway) -> None:
    from kernel_mgmt.restarter import AsyncKernelRestarter

    finder = KernelFinder.from_entrypoints({})
    _info, manager = await finder.launch("gateway/python3")
    restarter = AsyncKernelRestarter(manager, "gateway/python3", finder)
    events: list[tuple[str, Any]] = []
    restarted = asyncio.Event()

    def on_died(data: Any) -> None:
        events.append(("died", data))

    def on_restarted(data: Any) -> None:
        events.append(("restarted", data))
        restarted.set()

    restarter.add_callback(on_died, "died")
    restarter.add_callback(on_restarted, "restarted")
    restarter.start()
    new = None
    try:
        assert kg.delete(manager.remote_kernel_id) == 204
        await asyncio.wait_for(restarted.wait(), 60)
        new = restarter.kernel_manager
        assert new is not manager and await new.is_alive()
        assert [e for e, _ in events] == ["died", "restarted"]
        assert [k["id"] for k in kg.kernels()] == [new.remote_kernel_id]
        assert new.kernel_id == manager.kernel_id  # the application's id is kept
        async with run_kernel_async("gateway/python3"):  # other kernels are unaffected
            assert len(kg.kernels()) == 2
    finally:
        restarter.stop()
        for m in (new, manager):
            if m is not None:
                await m.kill()
                await m.cleanup()


UPLOAD_TARGET = textwrap.dedent(
    """
    import hashlib
    from comm import get_comm_manager
    received = []
    def _target(comm, msg):
        received.extend(bytes(b) for b in msg["buffers"])
    get_comm_manager().register_target("upload", _target)
    """
)


def test_buffers_from_the_client_reach_the_kernel(any_protocol: Gateway) -> None:
    """jupyter_client sends a comm_open with binary buffers through the bridge (v1 and JSON)."""
    import hashlib

    from jupyter_client.blocking.client import BlockingKernelClient as JupyterClient

    outputs: list[dict[str, Any]] = []
    with run_kernel_blocking("gateway/python3") as kc:
        assert kc.execute_interactive(UPLOAD_TARGET, timeout=60).content["status"] == "ok"
        jc = JupyterClient()
        jc.load_connection_info(dict(kc.connection_info))
        jc.start_channels()
        try:
            jc.wait_for_ready(timeout=60)
            content = {"comm_id": uuid.uuid4().hex, "target_name": "upload", "data": {}}
            msg = jc.session.msg("comm_open", content)
            jc.session.send(jc.shell_channel.socket, msg, buffers=[PNG, b"\x00\x01"])
            jc.execute_interactive(
                "print([hashlib.sha256(b).hexdigest() for b in received])",
                output_hook=outputs.append,
                timeout=60,
            )
        finally:
            jc.stop_channels()
    want = [hashlib.sha256(b).hexdigest() for b in (PNG, b"\x00\x01")]
    texts = [o["content"].get("text", "") for o in outputs]
    assert f"{want}\n" in texts, texts


async def test_deletion_seen_by_polling(gateway: Gateway) -> None:
    """A kernel that does not announce its exit (our echo kernel) deleted from outside: the
    bridge notices from GET /api/kernels/<id> (every poll_interval) or the websocket."""
    async with run_kernel_async("gateway/echo") as kc:
        manager = kc.manager
        assert (await kc.execute("hello")).content["status"] == "ok"
        assert gateway.delete(manager.remote_kernel_id) == 204
        assert not await asyncio.wait_for(manager.wait(None), 20)
        assert "no longer on the gateway" in manager.death_reason or "websocket" in (
            manager.death_reason
        )
        with pytest.raises(KernelDied):
            await asyncio.wait_for(kc.kernel_info(), 20)
