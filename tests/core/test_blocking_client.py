"""BlockingKernelClient and ClientInThread against a real ipykernel."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import threading
import time

import psutil
import pytest

from kernel_mgmt.client import BlockingKernelClient, ClientInThread, KernelDied, LoopThread
from kernel_mgmt.connection import write_connection_file
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
