"""The asyncio KernelClient against a real ipykernel over real ZeroMQ sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest
import zmq
import zmq.asyncio

from kernel_mgmt.client import AsyncKernelClient, IOLoopKernelClient, KernelClient, KernelDied
from kernel_mgmt.client_interactive import _read_line_from_fd
from kernel_mgmt.discovery import KernelFinder
from kernel_mgmt.protocol import Session
from kernel_mgmt.subproc.launcher import SubprocessKernelLauncher

IPYKERNEL = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


@pytest.fixture(autouse=True)
def jupyter_dirs(tmp_path, monkeypatch):
    """Private Jupyter/IPython dirs; afterwards no connection file may be left."""
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "path"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    yield runtime
    left = list(runtime.glob("kernel-*.json")) if runtime.exists() else []
    assert not left, f"connection files left behind: {left}"
    alive = [p for p in psutil.Process().children(recursive=True) if p.status() != "zombie"]
    assert not alive, f"processes left behind: {alive}"


@pytest.fixture
async def kernel():
    """A running ipykernel: (connection_info, manager); killed and cleaned up afterwards."""
    managers = []

    async def launch(cmd=IPYKERNEL, **kw):
        info, km = await SubprocessKernelLauncher(cmd, **kw).launch()
        managers.append(km)
        return info, km

    yield launch
    for km in managers:
        await km.kill()
        await km.cleanup()
        assert km.returncode is not None, "kernel process survived the test"


@pytest.fixture
async def client(kernel):
    info, km = await kernel()
    kc = KernelClient(info, manager=km)
    await kc.wait_for_ready(timeout=30)
    yield kc
    await kc.shutdown_or_terminate(timeout=2)
    kc.close()


#: Kernel types reached through the real finder: the pyimport provider (interrupt by
#: signal) and a kernelspec of the spec provider (interrupt_mode "message").
KERNEL_TYPES = ["pyimport/kernel", "spec/python3"]


def write_python3_spec(jupyter_path) -> None:
    d = jupyter_path / "kernels" / "python3"
    d.mkdir(parents=True)
    spec = {
        "argv": IPYKERNEL,
        "display_name": "Python 3",
        "language": "python",
        "interrupt_mode": "message",
    }
    (d / "kernel.json").write_text(json.dumps(spec))


@pytest.fixture(params=KERNEL_TYPES)
async def typed_client(request, jupyter_dirs, tmp_path, monkeypatch):
    """A ready client of a kernel launched through KernelFinder, for each kernel type."""
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "pyimport,spec")
    write_python3_spec(tmp_path / "path")
    info, km = await KernelFinder.from_entrypoints().launch(request.param)
    kc = KernelClient(info, manager=km)
    try:
        await kc.wait_for_ready(timeout=30)
        yield kc
    finally:
        await kc.shutdown_or_terminate(timeout=2)
        kc.close()
        await km.kill()
        await km.cleanup()


SLEEP = "import time; print('sleeping', flush=True); time.sleep(30)"


async def start_sleep(kc):
    """Execute SLEEP; return its reply future once the kernel is in the sleep (its print
    arrived), so that an interrupt cannot land before the code runs.

    ``stop_on_error=False``: after an error ipykernel aborts requests that reach it in the
    same instant (stop_on_error); the test's next request must not race that window."""
    printed = asyncio.Event()

    def on_iopub(msg):
        if msg.msg_type == "stream" and "sleeping" in msg.content.get("text", ""):
            printed.set()

    kc.add_handler(on_iopub, "iopub")
    try:
        fut = kc.execute(SLEEP, stop_on_error=False)
        await asyncio.wait_for(printed.wait(), 20)
    finally:
        kc.remove_handler(on_iopub)
    return fut


def test_aliases():
    assert AsyncKernelClient is KernelClient
    assert IOLoopKernelClient is KernelClient


async def test_wait_for_ready_gives_kernel_info(kernel):
    info, km = await kernel()
    kc = KernelClient(info, manager=km)
    try:
        reply = await kc.wait_for_ready(timeout=30)
        assert reply.msg_type == "kernel_info_reply"
        assert kc.kernel_info_dict["implementation"] == "ipython"
        assert kc.owned_kernel
        for sock in kc.sockets.values():
            assert sock.getsockopt(zmq.RECONNECT_IVL) == 10
    finally:
        await kc.shutdown_or_terminate(timeout=2)
        await kc.close()  # awaitable, as in the seed's example
    assert km.returncode == 0, "shutdown_request should let the kernel exit cleanly"


async def test_every_request_gets_its_reply(client):
    kc = client
    r = await kc.execute("a = 6 * 7")
    assert (r.msg_type, r.content["status"]) == ("execute_reply", "ok")
    r = await kc.execute("a", user_expressions={"x": "a + 1"})
    assert r.content["user_expressions"]["x"]["data"]["text/plain"] == "43"
    r = await kc.complete("import o", 8)
    assert r.msg_type == "complete_reply" and "os" in r.content["matches"]
    r = await kc.inspect("len")
    assert r.msg_type == "inspect_reply" and r.content["found"]
    r = await kc.history(hist_access_type="tail", n=5)
    assert r.msg_type == "history_reply" and r.content["status"] == "ok"
    r = await kc.kernel_info()
    assert r.msg_type == "kernel_info_reply"
    r = await kc.comm_info()
    assert r.msg_type == "comm_info_reply" and r.content["comms"] == {}
    r = await kc.is_complete("for i in range(3):")
    assert r.msg_type == "is_complete_reply" and r.content["status"] == "incomplete"
    fut = kc.execute("1")
    assert fut.jupyter_msg_id
    assert (await fut).parent_header["msg_id"] == fut.jupyter_msg_id
    on_control = []
    kc.add_handler(lambda msg: on_control.append(msg.msg_type), "control")
    r = await kc.shutdown()
    assert r.msg_type == "shutdown_reply" and r.content["restart"] is False
    assert on_control == ["shutdown_reply"], "shutdown_request must go on control"
    assert not await kc.manager.wait(10)


async def test_execute_waits_for_idle(client):
    seen = []
    client.add_handler(lambda msg, channel: seen.append(msg.msg_type), "iopub")
    await client.execute("print('hi')", idle_timeout=5, raise_on_no_idle=True)
    # All of this request's IOPub traffic has arrived once the idle status was seen.
    assert seen[-1] == "status" and "stream" in seen


async def test_execute_interactive_prints_like_jupyter_client(client, capsys):
    reply = await client.execute_interactive(
        "import sys\nprint('out')\nprint('err', file=sys.stderr)\n6 * 7", timeout=30
    )
    assert reply.content["status"] == "ok"
    captured = capsys.readouterr()
    assert captured.out == "out\n42\n"
    assert captured.err == "err\n"
    reply = await client.execute_interactive("1/0", timeout=30)
    assert reply.content["status"] == "error"
    assert "ZeroDivisionError" in capsys.readouterr().err


async def test_execute_interactive_output_hook_sees_only_its_request(client):
    outputs = []
    await client.execute("print('other')")
    reply = await client.execute_interactive(
        "print('mine')", output_hook=outputs.append, timeout=30
    )
    assert reply.content["status"] == "ok"
    texts = [m.content["text"] for m in outputs if m.msg_type == "stream"]
    assert texts == ["mine\n"]
    assert outputs[-1].msg_type == "status"
    assert outputs[-1].content["execution_state"] == "idle"


async def test_input_answered_by_stdin_hook(client, capsys):
    prompts = []

    def answer(msg):
        prompts.append(msg.content["prompt"])
        return "Ada"

    reply = await client.execute_interactive(
        "name = input('who? ')\nprint('hello', name)", stdin_hook=answer, timeout=30
    )
    assert reply.content["status"] == "ok"
    assert prompts == ["who? "]
    assert "hello Ada" in capsys.readouterr().out


async def test_async_stdin_hook_calling_input(client):
    async def answer(msg):
        client.input("7", parent=msg)

    outputs = []
    await client.execute_interactive(
        "x = int(input())\nprint(x * 6)", stdin_hook=answer, output_hook=outputs.append
    )
    assert [m.content["text"] for m in outputs if m.msg_type == "stream"] == ["42\n"]


async def test_interrupt_sleep_gives_keyboardinterrupt(client):
    fut = await start_sleep(client)
    t0 = time.monotonic()
    assert await client.interrupt() is None  # signal mode: the manager sends SIGINT
    reply = await asyncio.wait_for(fut, 5)
    assert time.monotonic() - t0 < 2
    assert reply.content["status"] == "error"
    assert reply.content["ename"] == "KeyboardInterrupt"
    # The kernel survives the interrupt.
    assert (await client.execute("1 + 1")).content["status"] == "ok"


async def test_interrupt_message_mode(kernel):
    info, km = await kernel(interrupt_mode="message")
    kc = KernelClient(info, manager=km)
    try:
        await kc.wait_for_ready(timeout=30)
        fut = await start_sleep(kc)
        t0 = time.monotonic()
        r = await kc.interrupt()
        assert r.msg_type == "interrupt_reply"  # interrupt_request went on control
        reply = await asyncio.wait_for(fut, 5)
        assert time.monotonic() - t0 < 2
        assert reply.content["ename"] == "KeyboardInterrupt"
    finally:
        await kc.shutdown_or_terminate(timeout=2)
        kc.close()


async def test_sigkill_fails_pending_request(client):
    fut = await start_sleep(client)
    t0 = time.monotonic()
    os.kill(client.manager.pid, signal.SIGKILL)
    with pytest.raises(KernelDied) as info:
        await asyncio.wait_for(fut, 5)
    assert time.monotonic() - t0 < 2
    assert info.value.returncode == -signal.SIGKILL
    # A hand-made manager has no kernel type: the message names the kernel by its id.
    km = client.manager
    assert km.kernel_type is None
    assert str(info.value).startswith(
        f"the kernel (id {km.kernel_id}) died: killed by SIGKILL (exit code -9)"
    )
    # Later requests fail at once rather than hang.
    with pytest.raises(KernelDied):
        await asyncio.wait_for(client.kernel_info(), 1)


async def test_heartbeat_notices_death_of_unowned_kernel(kernel):
    info, km = await kernel()
    kc = KernelClient(info)  # no manager: only the heartbeat can tell
    try:
        await kc.wait_for_ready(timeout=30)
        assert not kc.owned_kernel
        fut = await start_sleep(kc)
        t0 = time.monotonic()
        os.kill(km.pid, signal.SIGKILL)
        with pytest.raises(KernelDied, match="heartbeat"):
            await asyncio.wait_for(fut, 10)
        assert time.monotonic() - t0 < 3
    finally:
        kc.close()


async def test_kernel_exiting_at_startup_fails_wait_for_ready_fast(kernel):
    code = "import sys; sys.stderr.write('cannot start: no GPU\\n'); sys.exit(3)"
    info, km = await kernel([sys.executable, "-c", code, "{connection_file}"])
    kc = KernelClient(info, manager=km)
    t0 = time.monotonic()
    try:
        with pytest.raises(KernelDied) as exc:
            await kc.wait_for_ready(timeout=30)
    finally:
        kc.close()
    assert time.monotonic() - t0 < 5
    assert exc.value.returncode == 3
    assert str(exc.value).startswith(f"the kernel (id {km.kernel_id}) died: exit code 3.")
    assert "cannot start: no GPU" in str(exc.value)
    await km.cleanup()


async def test_wait_for_ready_times_out(kernel):
    # A process that lives but never speaks the protocol.
    info, km = await kernel(
        [sys.executable, "-c", "import time; time.sleep(60)", "{connection_file}"]
    )
    kc = KernelClient(info, manager=km)
    try:
        with pytest.raises(TimeoutError, match="did not become ready"):
            await kc.wait_for_ready(timeout=0.5)
    finally:
        await kc.shutdown_or_terminate(timeout=0.5)
        kc.close()


async def test_handlers_add_and_remove(client):
    got = []

    def one_arg(msg):
        got.append(("one", msg.msg_type))

    def two_args(msg, channel):
        got.append((channel, msg.msg_type))

    client.add_handler(one_arg, "shell")
    client.add_handler(two_args, {"shell", "iopub"})
    await client.execute("pass", idle_timeout=5)
    assert ("one", "execute_reply") in got
    assert ("shell", "execute_reply") in got and ("iopub", "status") in got
    client.remove_handler(one_arg)
    client.remove_handler(two_args, "iopub")
    got.clear()
    await client.execute("pass", idle_timeout=5)
    assert got == [("shell", "execute_reply")]
    with pytest.raises(ValueError, match="invalid channel"):
        client.add_handler(one_arg, "hb")


async def test_shutdown_or_terminate_on_dead_kernel(client):
    km = client.manager
    await km.kill()
    t0 = time.monotonic()
    await client.shutdown_or_terminate(timeout=1)  # no shutdown_request wait, no error
    assert time.monotonic() - t0 < 0.5


async def test_bad_signatures_are_dropped(tmp_path):
    """A forged message is logged and dropped; the real reply still arrives."""
    info = {"transport": "tcp", "ip": "127.0.0.1", "key": "a" * 64}
    ctx = zmq.asyncio.Context.instance()
    socks = {}
    for name, kind in (
        ("shell", zmq.ROUTER),
        ("control", zmq.ROUTER),
        ("stdin", zmq.ROUTER),
        ("iopub", zmq.PUB),
        ("hb", zmq.REP),
    ):
        s = ctx.socket(kind)
        s.linger = 0
        info[f"{name}_port"] = s.bind_to_random_port("tcp://127.0.0.1")
        socks[name] = s
    good = Session(key=info["key"])
    forged = Session(key="b" * 64)
    kc = KernelClient(info, use_heartbeat=False)
    try:
        fut = kc.kernel_info()
        req = good.deserialize(await asyncio.wait_for(socks["shell"].recv_multipart(), 5))
        idents = req.idents
        forged.send(
            socks["shell"], "kernel_info_reply", {"status": "ok", "f": 1}, parent=req, idents=idents
        )
        await socks["shell"].send_multipart([*idents, b"garbage"])
        good.send(
            socks["shell"], "kernel_info_reply", {"status": "ok", "f": 0}, parent=req, idents=idents
        )
        reply = await asyncio.wait_for(fut, 5)
        assert reply.content["f"] == 0
        # Reading goes on after the bad messages: a second request gets its reply too.
        fut = kc.kernel_info()
        req = good.deserialize(await asyncio.wait_for(socks["shell"].recv_multipart(), 5))
        good.send(
            socks["shell"], "kernel_info_reply", {"status": "ok", "f": 2}, parent=req, idents=idents
        )
        assert (await asyncio.wait_for(fut, 5)).content["f"] == 2
    finally:
        kc.close()
        for s in socks.values():
            s.close()


async def test_closed_client_refuses_requests(kernel):
    info, km = await kernel()
    kc = KernelClient(info, manager=km)
    kc.close()
    with pytest.raises(RuntimeError, match="closed"):
        kc.kernel_info()
    await km.kill()
    await km.cleanup()


def test_client_created_outside_loop_starts_on_first_use(tmp_path):
    """Made before any loop runs, then used in asyncio.run() twice (a new loop each time):
    it must really send and receive in each loop, not just fail to time out."""
    shell = zmq.Context.instance().socket(zmq.ROUTER)
    shell.linger = 0
    info = {"transport": "tcp", "ip": "127.0.0.1", "key": "d" * 64}
    info["shell_port"] = shell.bind_to_random_port("tcp://127.0.0.1")
    for name in ("iopub", "stdin", "control", "hb"):
        info[f"{name}_port"] = 1  # never answered; only shell is used
    server = Session(key=info["key"])
    kc = KernelClient(info, use_heartbeat=False)  # no running loop yet

    async def use(n):
        fut = kc.kernel_info()
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, shell.poll, 5000), "request never sent"
        req = server.deserialize(shell.recv_multipart())
        server.send(shell, "kernel_info_reply", {"status": "ok", "n": n}, req, idents=req.idents)
        return (await asyncio.wait_for(fut, 5)).content["n"]

    try:
        assert asyncio.run(use(1)) == 1
        assert asyncio.run(use(2)) == 2
    finally:
        kc.close()
        shell.close()


async def test_ready_without_iopub_welcome():
    """Kernels older than iopub_welcome only publish on requests: kernel_info is re-sent
    until a status message gets through the (late) IOPub subscription."""
    info = {"transport": "tcp", "ip": "127.0.0.1", "key": "c" * 64}
    ctx = zmq.asyncio.Context.instance()
    socks = {}
    for name, kind in (
        ("shell", zmq.ROUTER),
        ("control", zmq.ROUTER),
        ("stdin", zmq.ROUTER),
        ("iopub", zmq.PUB),
        ("hb", zmq.REP),
    ):
        s = ctx.socket(kind)
        s.linger = 0
        info[f"{name}_port"] = s.bind_to_random_port("tcp://127.0.0.1")
        socks[name] = s
    session = Session(key=info["key"])
    requests = []

    async def old_kernel():
        while True:
            req = session.deserialize(await socks["shell"].recv_multipart())
            requests.append(req.msg_type)
            session.send(socks["iopub"], "status", {"execution_state": "busy"}, parent=req)
            session.send(
                socks["shell"], "kernel_info_reply", {"status": "ok"}, parent=req, idents=req.idents
            )
            session.send(socks["iopub"], "status", {"execution_state": "idle"}, parent=req)

    server = asyncio.create_task(old_kernel())
    kc = KernelClient(info, use_heartbeat=False)
    try:
        reply = await kc.wait_for_ready(timeout=10)
        assert reply.msg_type == "kernel_info_reply"
        assert kc._iopub_seen.is_set()
        assert requests and set(requests) == {"kernel_info_request"}
    finally:
        server.cancel()
        kc.close()
        for s in socks.values():
            s.close()


async def test_execute_interrupt_timeout(client):
    t0 = time.monotonic()
    reply = await client.execute("import time; time.sleep(30)", interrupt_timeout=0.5)
    assert reply.content["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - t0 < 3


async def test_execute_interactive_timeout(client):
    with pytest.raises(TimeoutError, match=r"no execute_reply within 0\.3 s"):
        await client.execute_interactive("import time; time.sleep(30)", timeout=0.3)
    await client.interrupt()


async def test_shutdown_or_terminate_uses_sigterm_before_sigkill(kernel):
    """A kernel that never answers shutdown_request gets SIGTERM (manager.terminate())
    after the reply and exit waits, and SIGKILL only if SIGTERM does not end it (seed 8.6:
    'up to timeout seconds to respond to the shutdown message, then the same to terminate')."""
    mute = [sys.executable, "-c", "import time; time.sleep(60)", "{connection_file}"]
    info, km = await kernel(mute)
    kc = KernelClient(info, manager=km)
    t0 = time.monotonic()
    await kc.shutdown_or_terminate(timeout=0.3)
    kc.close()
    assert km.returncode == -signal.SIGTERM, "SIGTERM should have ended a kernel that obeys it"
    assert time.monotonic() - t0 < 3


async def test_shutdown_or_terminate_kills_kernel_ignoring_sigterm(kernel, tmp_path):
    ready = tmp_path / "ready"
    code = (
        "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )
    info, km = await kernel([sys.executable, "-c", code, "{connection_file}"])
    deadline = time.monotonic() + 20
    while not ready.exists():  # SIGTERM must arrive after the handler is installed
        assert time.monotonic() < deadline, "fake kernel did not start"
        await asyncio.sleep(0.01)
    kc = KernelClient(info, manager=km)
    t0 = time.monotonic()
    await kc.shutdown_or_terminate(timeout=0.3)
    kc.close()
    assert km.returncode == -signal.SIGKILL
    assert 0.8 < time.monotonic() - t0 < 4, "expected reply wait + exit wait + SIGTERM wait"


async def test_finder_kernel_every_request_output_and_input(typed_client, capsys):
    """Through pyimport/kernel and spec/python3: each request type gets its own reply,
    execute_interactive prints, and input() is answered by the stdin hook."""
    kc = typed_client
    replies = {
        "execute": await kc.execute("a = 6 * 7"),
        "complete": await kc.complete("import o"),
        "inspect": await kc.inspect("a"),
        "history": await kc.history(hist_access_type="tail", n=5),
        "kernel_info": await kc.kernel_info(),
        "comm_info": await kc.comm_info(),
        "is_complete": await kc.is_complete("if a:"),
    }
    for name, reply in replies.items():
        assert reply.msg_type == f"{name}_reply"
        assert reply.content["status"] == "ok" or name == "is_complete", reply.content
    assert "os" in replies["complete"].content["matches"]
    assert replies["inspect"].content["found"]
    assert replies["is_complete"].content["status"] == "incomplete"
    assert any("a = 6 * 7" in entry[2] for entry in replies["history"].content["history"])

    reply = await kc.execute_interactive("print('out')\na", timeout=30)
    assert reply.content["status"] == "ok"
    assert capsys.readouterr().out == "out\n42\n"
    reply = await kc.execute_interactive(
        "x = input('x? ')\nprint(x * 2)", stdin_hook=lambda msg: "ab", timeout=30
    )
    assert reply.content["status"] == "ok"
    assert capsys.readouterr().out == "abab\n"


async def test_finder_kernel_interrupt_then_sigkill(typed_client, request):
    """Interrupt of time.sleep(30) gives KeyboardInterrupt within 2 s (message mode: an
    interrupt_request on control; signal mode: SIGINT); SIGKILL then fails the pending
    request within 2 s."""
    kc = typed_client
    kernel_type = request.node.callspec.params["typed_client"]
    expected_mode = "message" if kernel_type.startswith("spec/") else "signal"
    assert kc.manager.interrupt_mode == expected_mode
    control = []
    kc.add_handler(lambda msg: control.append(msg.msg_type), "control")
    fut = await start_sleep(kc)
    t0 = time.monotonic()
    result = await kc.interrupt()
    reply = await asyncio.wait_for(fut, 5)
    assert time.monotonic() - t0 < 2
    assert reply.content["ename"] == "KeyboardInterrupt"
    if kc.manager.interrupt_mode == "message":
        assert result.msg_type == "interrupt_reply"
        assert control == ["interrupt_reply"], "interrupt_request must go on control"
    else:
        assert result is None and control == []

    fut = await start_sleep(kc)
    t0 = time.monotonic()
    os.kill(kc.manager.pid, signal.SIGKILL)
    with pytest.raises(KernelDied) as died:
        await asyncio.wait_for(fut, 5)
    assert time.monotonic() - t0 < 2
    # Named by its type (recorded by KernelFinder.launch) and its id; the signal by name.
    assert str(died.value).startswith(
        f"kernel {kernel_type} (id {kc.manager.kernel_id}) died: killed by SIGKILL (exit code -9)"
    )


async def test_finder_kernel_killed_during_startup_named_by_type(jupyter_dirs, monkeypatch):
    """A kernel SIGKILLed before it is ready fails wait_for_ready with a message naming its
    type and the signal, as `kernel-mgmt run` shows it."""
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "pyimport")
    info, km = await KernelFinder.from_entrypoints().launch("pyimport/kernel")
    kc = KernelClient(info, manager=km)
    try:
        os.kill(km.pid, signal.SIGKILL)
        with pytest.raises(KernelDied) as died:
            await kc.wait_for_ready(timeout=30)
    finally:
        kc.close()
        await km.kill()
        await km.cleanup()
    assert died.value.returncode == -signal.SIGKILL
    assert str(died.value) == (
        f"kernel pyimport/kernel (id {km.kernel_id}) died: killed by SIGKILL (exit code -9)"
    )


def test_describe_exit_names_signals():
    from kernel_mgmt.client_base import describe_exit

    assert describe_exit(None) == ""
    assert describe_exit(0) == "exit code 0"
    assert describe_exit(-signal.SIGTERM) == "killed by SIGTERM (exit code -15)"
    assert describe_exit(-200) == "killed by signal 200 (exit code -200)"


def _stray_kernels(runtime) -> list[psutil.Process]:
    """Kernels started with this test's runtime dir (they run in their own session)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(str(runtime) in part for part in (p.info["cmdline"] or [])):
                found.append(p)
    return found


def test_ctrl_c_at_a_prompt_on_piped_stdin_exits_cleanly(jupyter_dirs):
    """The default stdin hook waits in a daemon thread; with stdin a pipe (kept open) a
    Ctrl-C must not leave it holding sys.stdin's lock at exit, which aborted the
    interpreter ("Fatal Python error: _enter_buffered_busy", exit 134)."""
    script = shutil.which("kernel-mgmt", path=os.path.dirname(sys.executable)) or "kernel-mgmt"
    proc = subprocess.Popen(
        [script, "run", "pyimport/kernel", "-c", "x = input('name? ')"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "KERNEL_MGMT_PROVIDERS": "pyimport", "PYTHONUNBUFFERED": "1"},
    )
    try:
        seen = b""
        deadline = time.monotonic() + 30
        while b"name? " not in seen:
            left = deadline - time.monotonic()
            assert left > 0 and select.select([proc.stdout], [], [], left)[0], seen
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, f"the run ended before prompting: {seen!r}"
            seen += chunk
        time.sleep(0.2)  # the hook's thread is now blocked reading stdin
        proc.send_signal(signal.SIGINT)
        # Keep stdin open until the process has exited (communicate() would close it
        # first, and the EOF would free the waiting thread); its output fits a pipe.
        proc.wait(timeout=30)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()
    text = err.decode("utf-8", "replace")
    assert "Fatal Python error" not in text, text
    assert proc.returncode == 130, text
    assert "KeyboardInterrupt" in text, "the kernel itself was interrupted"
    deadline = time.monotonic() + 10
    while _stray_kernels(jupyter_dirs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _stray_kernels(jupyter_dirs)


def test_piped_answers_go_to_successive_prompts(jupyter_dirs):
    """Answers read from a pipe: one line per prompt, EOF a clear EOFError in the kernel."""
    script = shutil.which("kernel-mgmt", path=os.path.dirname(sys.executable)) or "kernel-mgmt"
    code = "a = input('1? ')\nb = input('2? ')\nprint(repr(a), repr(b))\ninput('3? ')"
    p = subprocess.run(
        [script, "run", "pyimport/kernel", "-c", code],
        input=b"Ada Lovelace\nBob\n",
        capture_output=True,
        env={**os.environ, "KERNEL_MGMT_PROVIDERS": "pyimport"},
        timeout=60,
    )
    out, err = p.stdout.decode(), p.stderr.decode()
    assert "1? 2? 'Ada Lovelace' 'Bob'\n3? " in out, (out, err)
    assert p.returncode == 1 and "EOFError" in err, (p.returncode, err)


def test_read_line_from_fd_stops_at_the_newline():
    """Nothing past the answer's newline is consumed; a last unterminated line counts."""
    r, w = os.pipe()
    try:
        os.write(w, "héllo\r\nnext\nlast".encode())
        os.close(w)
        assert _read_line_from_fd(r, "utf-8", "strict") == "héllo"
        assert _read_line_from_fd(r, "utf-8", "strict") == "next"
        assert _read_line_from_fd(r, "utf-8", "strict") == "last"
        with pytest.raises(EOFError):
            _read_line_from_fd(r, "utf-8", "strict")
    finally:
        os.close(r)


async def test_shutdown_request_marks_the_owned_kernel_as_shut_down(client):
    """Before the kernel exits, its manager knows the exit is wanted (a restarter reads it)."""
    km = client.manager
    assert km.shutdown_requested is False
    fut = client.shutdown()
    assert km.shutdown_requested is True
    assert (await asyncio.wait_for(fut, 30)).content["restart"] is False
    assert await km.wait(30) is False and km.returncode == 0
