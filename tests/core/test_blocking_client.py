"""BlockingKernelClient and ClientInThread against a real ipykernel."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import pathlib
import signal
import sys
import threading
import time

import psutil
import pytest

from kernel_mgmt.client import (
    BlockingKernelClient,
    ClientInThread,
    ConnectionInfoError,
    KernelClient,
    KernelDied,
    LoopThread,
)
from kernel_mgmt.connection import PORT_NAMES, ConnectionFileError, write_connection_file
from kernel_mgmt.hl import start_kernel_blocking
from kernel_mgmt.subproc.launcher import SubprocessKernelLauncher

IPYKERNEL = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


@pytest.fixture(autouse=True)
def jupyter_dirs(tmp_path, monkeypatch):
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "path"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "pyimport")
    yield runtime
    left = list(runtime.glob("kernel-*.json")) if runtime.exists() else []
    assert not left, f"connection files left behind: {left}"
    alive = [p for p in psutil.Process().children(recursive=True) if p.status() != "zombie"]
    assert not alive, f"processes left behind: {alive}"


@pytest.fixture
def launched():
    """Launch ipykernel on a private loop thread, as start_kernel_blocking does."""
    thread = LoopThread()
    info, km = thread.run(SubprocessKernelLauncher(IPYKERNEL).launch(), 30)
    yield thread, info, km

    async def dispose():
        await km.kill()
        await km.cleanup()

    if thread.alive:
        thread.run(dispose(), 15)
        thread.stop()
    else:
        asyncio.run(dispose())
    assert km.returncode is not None, "kernel process survived the test"


@pytest.fixture
def bkc(launched):
    thread, info, km = launched
    kc = BlockingKernelClient(info, manager=km, _loop_thread=thread)
    kc.wait_for_ready(timeout=30)
    yield kc
    kc.shutdown_or_terminate(timeout=2)
    kc.close()


def test_every_request_gets_its_reply(bkc):
    r = bkc.execute("a = 6 * 7")
    assert (r.msg_type, r.content["status"]) == ("execute_reply", "ok")
    assert bkc.complete("import o", 8).content["matches"]
    assert bkc.inspect("len").content["found"]
    assert bkc.history(hist_access_type="tail", n=3).msg_type == "history_reply"
    assert bkc.kernel_info().content["implementation"] == "ipython"
    assert bkc.kernel_info_dict["implementation"] == "ipython"
    assert bkc.comm_info().msg_type == "comm_info_reply"
    assert bkc.is_complete("x = (").content["status"] == "incomplete"
    msg_id = bkc.execute("b = 1", reply=False)
    assert isinstance(msg_id, str) and msg_id
    assert bkc.shutdown().msg_type == "shutdown_reply"


def test_execute_interactive_output_and_input(bkc, capsys):
    reply = bkc.execute_interactive("print('hello')\n6 * 7", timeout=30)
    assert reply.content["status"] == "ok"
    assert capsys.readouterr().out == "hello\n42\n"

    def stdin_hook(msg):
        # Runs in a thread of its own: blocking here does not stall the client.
        time.sleep(0.05)
        bkc.input("blue", parent=msg)

    outputs = []
    reply = bkc.execute_interactive(
        "c = input('colour? ')\nprint(c.upper())",
        output_hook=outputs.append,
        stdin_hook=stdin_hook,
        timeout=30,
    )
    assert reply.content["status"] == "ok"
    assert [m.content["text"] for m in outputs if m.msg_type == "stream"] == ["BLUE\n"]


def test_timeout_raises_builtin_timeouterror_then_interrupt(bkc):
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        bkc.execute("import time; time.sleep(30)", timeout=0.3)
    assert time.monotonic() - t0 < 2
    bkc.interrupt()
    # The interrupted execution's reply is dropped (its request timed out). A request that
    # reaches ipykernel while it handles the KeyboardInterrupt is aborted (stop_on_error);
    # the one after works.
    assert bkc.execute("1", timeout=10).content["status"] in ("ok", "aborted")
    assert bkc.execute("1", timeout=10).content["status"] == "ok"


def test_kernel_death_fails_pending_blocking_request(bkc):
    killed_at = []

    def kill():
        killed_at.append(time.monotonic())
        os.kill(bkc.manager.pid, signal.SIGKILL)

    threading.Timer(0.3, kill).start()
    with pytest.raises(KernelDied):
        bkc.execute("import time; time.sleep(30)", timeout=10)
    assert time.monotonic() - killed_at[0] < 2
    assert not bkc.is_alive()


async def test_blocking_client_inside_running_event_loop(launched):
    """A Jupyter cell or pytest-asyncio test already runs a loop: the client still works."""
    thread, info, km = launched
    asyncio.get_running_loop()  # we are inside a running loop
    kc = BlockingKernelClient(info, manager=km, _loop_thread=thread)
    try:
        kc.wait_for_ready(timeout=30)
        assert kc.execute("x = 1").content["status"] == "ok"
    finally:
        kc.shutdown_or_terminate(timeout=2)
        kc.close()


async def test_blocking_client_own_loop_inside_running_loop(tmp_path):
    """Without a launcher thread: the client makes its own loop thread."""
    info, km = await SubprocessKernelLauncher(IPYKERNEL).launch()
    kc = BlockingKernelClient(info, manager=km)
    try:
        kc.wait_for_ready(timeout=30)
        assert kc.kernel_info().msg_type == "kernel_info_reply"
    finally:
        kc.shutdown_or_terminate(timeout=2)
        kc.close()
        await km.kill()
        await km.cleanup()


def test_handler_calling_blocking_method_is_refused(bkc):
    errors = []

    def handler(msg):
        try:
            bkc.kernel_info()
        except RuntimeError as e:
            errors.append(str(e))

    bkc.add_handler(handler, "shell")
    bkc.execute("1")
    bkc.remove_handler(handler)
    assert errors and "deadlock" in errors[0]


def test_client_in_thread(launched):
    _thread, info, km = launched
    cit = ClientInThread(info, manager=km)
    replies = []
    got = threading.Event()

    def on_shell(msg, channel):
        replies.append(msg)
        got.set()

    cit.start()
    try:
        assert cit.kernel_responding.wait(30)
        cit.add_handler(on_shell, "shell")
        msg_id = cit.execute("1 + 1")
        assert got.wait(10)
        assert replies[0].parent_header["msg_id"] == msg_id
    finally:
        cit.close()


def test_blocking_client_in_a_notebook_cell(launched):
    """A Jupyter cell runs inside ipykernel's event loop: run_kernel_blocking still works there,
    and rich outputs of the inner kernel show up as the cell's own display_data."""
    thread, info, km = launched
    kc = BlockingKernelClient(info, manager=km, _loop_thread=thread)
    cell = (
        "import asyncio\n"
        "from kernel_mgmt import run_kernel_blocking\n"
        "with run_kernel_blocking('pyimport/kernel') as inner:\n"
        "    inner.execute_interactive(\n"
        "        \"from IPython.display import HTML, display; print('inner says hi');"
        " display(HTML('<b>rich</b>'))\")\n"
    )
    outputs = []
    try:
        kc.wait_for_ready(timeout=30)
        reply = kc.execute_interactive(cell, output_hook=outputs.append, timeout=60)
        assert reply.content["status"] == "ok", reply.content
        streams = "".join(m.content["text"] for m in outputs if m.msg_type == "stream")
        assert "inner says hi" in streams
        displays = [m.content["data"] for m in outputs if m.msg_type == "display_data"]
        assert any(d.get("text/html") == "<b>rich</b>" for d in displays)
    finally:
        kc.shutdown_or_terminate(timeout=5)
        kc.close()


def test_unclosed_blocking_client_releases_its_thread_and_sockets(tmp_path):
    """A client dropped without close() must not keep a loop thread and 4 sockets forever."""
    path, info = write_connection_file(str(tmp_path / "k.json"))
    try:
        kc = BlockingKernelClient(info, use_heartbeat=False)
        thread = kc._thread.thread
        sockets = list(kc.loop_client.sockets.values())
        del kc
        gc.collect()
        thread.join(5)
        assert not thread.is_alive(), "the client's loop thread outlived the client"
        assert all(s.closed for s in sockets)
    finally:
        os.unlink(path)


def test_blocking_requests_from_many_threads(bkc):
    """Requests are sent from the callers' threads while the loop thread reads the same
    sockets: concurrent callers each get their own reply, and none is lost."""
    errors = []

    def worker(n):
        try:
            for i in range(25):
                r = bkc.execute(f"{n} * 1000 + {i}", user_expressions={"v": f"{n}*1000+{i}"})
                got = r.content["user_expressions"]["v"]["data"]["text/plain"]
                assert got == str(n * 1000 + i), (n, i, got)
                assert bkc.kernel_info(timeout=10).msg_type == "kernel_info_reply"
        except BaseException as e:  # reported below, with the thread's own message
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a blocking request hung"
    assert not errors, errors


def test_requests_keep_their_order(bkc):
    """reply=False and loop-started requests (idle_timeout) are on the wire before the call
    returns, so the next request of the same thread cannot overtake them."""
    for i in range(20):
        bkc.execute(f"a = {i}", reply=False)
        bkc.execute("a += 100", reply=False, idle_timeout=5)
        r = bkc.execute("pass", user_expressions={"a": "a"}, timeout=10)
        assert r.content["user_expressions"]["a"]["data"]["text/plain"] == str(i + 100)


@pytest.fixture(params=["pyimport/kernel", "spec/python3"])
def typed_bkc(request, jupyter_dirs, tmp_path, monkeypatch):
    """A ready blocking client of a kernel started through the finder (start_kernel_blocking):
    the pyimport provider (signal interrupts) and a kernelspec with interrupt_mode message."""
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "pyimport,spec")
    d = tmp_path / "path" / "kernels" / "python3"
    d.mkdir(parents=True)
    spec = {
        "argv": IPYKERNEL,
        "display_name": "P3",
        "language": "python",
        "interrupt_mode": "message",
    }
    (d / "kernel.json").write_text(json.dumps(spec))
    km, kc = start_kernel_blocking(request.param, startup_timeout=30)
    try:
        yield kc
    finally:
        kc.shutdown_or_terminate(timeout=2)
        kc.close()
    assert km.returncode is not None


def _sleep_started(kc):
    """Send a 30 s sleep; return once the kernel is in it (its print arrived)."""
    printed = threading.Event()

    def on_iopub(msg):
        if msg.msg_type == "stream" and "sleeping" in msg.content.get("text", ""):
            printed.set()

    kc.add_handler(on_iopub, "iopub")
    code = "import time; print('sleeping', flush=True); time.sleep(30)"
    msg_id = kc.execute(code, reply=False, stop_on_error=False)
    assert printed.wait(20), "the kernel never started the sleep"
    kc.remove_handler(on_iopub)
    return msg_id


def test_finder_kernel_blocking_requests_output_input_interrupt_kill(typed_bkc, capsys, request):
    """Through pyimport/kernel and spec/python3 with the blocking client: every request
    type's reply, execute_interactive output, input() via the stdin hook, an interrupt of
    time.sleep(30) within 2 s, and SIGKILL failing a pending request within 2 s."""
    kc = typed_bkc
    replies = {
        "execute": kc.execute("a = 6 * 7", timeout=10),
        "complete": kc.complete("import o", timeout=10),
        "inspect": kc.inspect("a", timeout=10),
        "history": kc.history(hist_access_type="tail", n=5, timeout=10),
        "kernel_info": kc.kernel_info(timeout=10),
        "comm_info": kc.comm_info(timeout=10),
        "is_complete": kc.is_complete("if a:", timeout=10),
    }
    for name, reply in replies.items():
        assert reply.msg_type == f"{name}_reply"
    assert replies["inspect"].content["found"]
    assert replies["is_complete"].content["status"] == "incomplete"

    assert kc.execute_interactive("print('out')\na", timeout=30).content["status"] == "ok"
    assert capsys.readouterr().out == "out\n42\n"
    reply = kc.execute_interactive(
        "x = input('x? ')\nprint(x * 2)", stdin_hook=lambda msg: "ab", timeout=30
    )
    assert reply.content["status"] == "ok"
    assert capsys.readouterr().out == "abab\n"

    # The interrupted execution's reply arrives through a handler (the request was sent
    # with reply=False).
    replied = threading.Event()
    got = []

    def on_shell(msg):
        if msg.msg_type == "execute_reply":
            got.append(msg)
            replied.set()

    msg_id = _sleep_started(kc)
    kc.add_handler(on_shell, "shell")
    t0 = time.monotonic()
    result = kc.interrupt()
    assert replied.wait(5)
    assert time.monotonic() - t0 < 2
    kc.remove_handler(on_shell)
    assert got[0].parent_header["msg_id"] == msg_id
    assert got[0].content["ename"] == "KeyboardInterrupt"
    if kc.manager.interrupt_mode == "message":
        assert result.msg_type == "interrupt_reply"
    else:
        assert result is None

    _sleep_started(kc)
    threading.Timer(0.1, os.kill, (kc.manager.pid, signal.SIGKILL)).start()
    t0 = time.monotonic()
    with pytest.raises(KernelDied) as died:
        kc.kernel_info(timeout=10)  # queued behind the sleep: pending when the kernel dies
    assert time.monotonic() - t0 < 2
    assert str(died.value).startswith(
        f"kernel {request.node.callspec.params['typed_bkc']} (id {kc.manager.kernel_id}) died: "
        "killed by SIGKILL (exit code -9)"
    )


def test_default_output_matches_jupyter_client(launched, capsys):
    """execute_interactive's default output is jupyter_client's, byte for byte, except that
    a text result or a traceback ends its line (jupyter_client leaves the cursor after it)."""
    from jupyter_client import BlockingKernelClient as JupyterClient

    thread, info, km = launched
    ours = BlockingKernelClient(info, manager=km, _loop_thread=thread)
    theirs = JupyterClient()
    theirs.load_connection_info(info)
    theirs.start_channels(hb=False)
    cells = [
        "import sys\nprint('out')\nprint('err', file=sys.stderr)\n6 * 7",
        "from IPython.display import display\ndisplay('shown')\nprint('after')",
        "1/0",
    ]
    try:
        ours.wait_for_ready(timeout=30)
        theirs.wait_for_ready(timeout=30)
        capsys.readouterr()  # the kernel's own start-up warnings
        for cell in cells:
            # store_history=False: the same execution count, so the same traceback text.
            ours.execute_interactive(cell, store_history=False, timeout=30)
            mine = capsys.readouterr()
            theirs.execute_interactive(cell, store_history=False, timeout=30)
            ref = capsys.readouterr()
            if cell == "1/0":
                assert mine.err == ref.err + "\n" and "ZeroDivisionError" in ref.err
            elif cell.endswith("6 * 7"):
                assert (mine.out, mine.err) == (ref.out + "\n", ref.err) == ("out\n42\n", "err\n")
            else:
                assert mine.out == ref.out.replace("'shown'", "'shown'\n") == "'shown'\nafter\n"
    finally:
        theirs.stop_channels()
        ours.shutdown_or_terminate(timeout=2)
        ours.close()


def test_client_in_thread_message_mode_interrupt():
    """ClientInThread.interrupt() on a kernel with interrupt_mode 'message' sends an
    interrupt_request on control (the seed sent it on shell, where kernels ignore it)."""
    thread = LoopThread()
    launcher = SubprocessKernelLauncher(IPYKERNEL, interrupt_mode="message")
    info, km = thread.run(launcher.launch(), 30)
    cit = ClientInThread(info, manager=km)
    seen = []
    replied = threading.Event()
    printed = threading.Event()

    def on_msg(msg, channel):
        seen.append((channel, msg.msg_type))
        if msg.msg_type == "stream":
            printed.set()
        if msg.msg_type == "execute_reply":
            seen.append(("ename", msg.content.get("ename")))
            replied.set()

    cit.start()
    try:
        assert cit.kernel_responding.wait(30)
        cit.add_handler(on_msg, {"shell", "control", "iopub"})
        cit.execute("import time; print('sleeping', flush=True); time.sleep(30)")
        assert printed.wait(20)
        t0 = time.monotonic()
        cit.interrupt()
        assert replied.wait(5) and time.monotonic() - t0 < 2
        assert ("control", "interrupt_reply") in seen
        assert ("ename", "KeyboardInterrupt") in seen
    finally:
        cit.close()

        async def dispose():
            await km.kill()
            await km.cleanup()

        thread.run(dispose(), 15)
        thread.stop()


@pytest.mark.parametrize("as_path", [False, True], ids=["str", "pathlike"])
def test_blocking_client_from_connection_file_path(launched, as_path):
    """The path of a kernel's connection file is accepted wherever connection info is."""
    _thread, _info, km = launched
    path = pathlib.Path(km.connection_file) if as_path else km.connection_file
    with BlockingKernelClient(path) as kc:
        assert kc.connection_info["shell_port"] == _info["shell_port"]
        assert kc.execute("1 + 1").content["status"] == "ok"
    cit = ClientInThread(path)
    assert cit.connection_info["key"] == _info["key"]


def test_bad_connection_info_is_named(tmp_path):
    missing = tmp_path / "kernel-gone.json"
    with pytest.raises(ConnectionFileError, match=r"kernel-gone\.json does not exist"):
        BlockingKernelClient(str(missing))
    partial = tmp_path / "kernel-partial.json"
    partial.write_text(json.dumps({"ip": "127.0.0.1", "shell_port": 1}))
    with pytest.raises(ConnectionFileError, match=r"kernel-partial\.json lacks iopub_port"):
        KernelClient(partial)
    with pytest.raises(ConnectionInfoError) as e:
        KernelClient({})
    assert isinstance(e.value, ValueError)
    assert "lacks ip, shell_port, iopub_port, stdin_port, control_port, hb_port" in str(e.value)
    with pytest.raises(ConnectionInfoError, match="lacks hb_port:"):
        BlockingKernelClient({"ip": "127.0.0.1", **{n: 1 for n in PORT_NAMES[:-1]}})
    with pytest.raises(TypeError, match="not int"):
        ClientInThread(5)
