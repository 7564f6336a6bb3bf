"""Faults: interrupts, a busy kernel's control channel, hostile frames, a dying parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import zmq

from kernel_mgmt.protocol import DELIM, Session

from .conftest import KERNEL_ARGV, RawKernel


def wait_for_execute_input(k, msg, timeout=10.0):
    """Block until the kernel has started running ``msg`` (its execute_input is out)."""
    deadline = time.monotonic() + timeout
    while True:
        got = k.recv("iopub", max(0.01, deadline - time.monotonic()))
        if got.parent_header.get("msg_id") == msg.msg_id and got.msg_type == "execute_input":
            return


@pytest.mark.parametrize(
    "code",
    ["time.sleep(30)", "while True:\n    pass", "asyncio.run(asyncio.sleep(30))"],
    ids=["sleep", "busy-loop", "asyncio"],
)
def test_signal_interrupt_always_replies(raw_kernel, code):
    k = raw_kernel("wk-py")
    for _ in range(5):  # every time, not just the first
        msg = k.send("shell", "execute_request", {"code": code})
        wait_for_execute_input(k, msg)
        os.kill(k.proc.pid, signal.SIGINT)
        reply = k.reply("shell", msg, timeout=10)
        assert reply.content["status"] == "error"
        assert reply.content["ename"] == "KeyboardInterrupt"
    reply, _ = k.execute("6*7")
    assert reply.content["status"] == "ok"


@pytest.mark.parametrize(
    "code", ["time.sleep(30)", "while True:\n    pass"], ids=["sleep", "busy-loop"]
)
def test_message_interrupt_always_replies(raw_kernel, code):
    k = raw_kernel("wk-py")
    for _ in range(5):  # the control thread wins the GIL as do_execute starts: a real race
        msg = k.send("shell", "execute_request", {"code": code})
        wait_for_execute_input(k, msg)
        intr = k.send("control", "interrupt_request")
        assert k.reply("control", intr).content == {"status": "ok"}
        reply = k.reply("shell", msg, timeout=10)
        assert reply.content["status"] == "error"
        assert reply.content["ename"] == "KeyboardInterrupt"


def test_interrupt_while_waiting_for_input(raw_kernel):
    k = raw_kernel("wk-py")
    msg = k.send("shell", "execute_request", {"code": "input('?')", "allow_stdin": True})
    assert k.recv("stdin").msg_type == "input_request"
    intr = k.send("control", "interrupt_request")
    k.reply("control", intr)
    assert k.reply("shell", msg).content["ename"] == "KeyboardInterrupt"


def machinery_lines(traceback: list[str]) -> list[str]:
    """Traceback lines that name a file of wrapper_kernel's own machinery (not its examples)."""
    import wrapper_kernel

    here = os.path.dirname(os.path.abspath(wrapper_kernel.__file__))
    return [
        line
        for line in traceback
        if f'File "{here}{os.sep}' in line and f"{os.sep}examples{os.sep}" not in line
    ]


@pytest.mark.parametrize("how", ["signal", "message"])
def test_interrupt_traceback_shows_only_author_frames(raw_kernel, how):
    """The KeyboardInterrupt traceback ends at the author's line (time.sleep, input()): the
    SIGINT handler (server._on_sigint), the stdin wait and the dispatcher are left out."""
    k = raw_kernel("wk-py")
    for code in ("print('sleeping', flush=True); time.sleep(30)", "input('?')"):
        msg = k.send("shell", "execute_request", {"code": code, "allow_stdin": True})
        if code.startswith("input"):
            assert k.recv("stdin").msg_type == "input_request"
        else:  # in the sleep: an interrupt before do_execute starts has no frames to show
            while k.recv("iopub").msg_type != "stream":
                pass
        if how == "signal":
            os.kill(k.proc.pid, signal.SIGINT)
        else:
            k.reply("control", k.send("control", "interrupt_request"))
        reply = k.reply("shell", msg, timeout=10)
        tb = reply.content["traceback"]
        assert reply.content["ename"] == "KeyboardInterrupt"
        assert not machinery_lines(tb), tb
        assert not any("_on_sigint" in line or "zmq" in line for line in tb), tb
        assert "in do_execute" in tb[1] and "pykernel.py" in tb[1], tb  # the author's method
        assert tb[-2] == '  File "<cell>", line 1, in <module>', tb  # the running line
        assert tb[-1] == "KeyboardInterrupt", tb
        error = next(m for m in k.iopub_until_idle(msg) if m.msg_type == "error")
        assert error.content["traceback"] == tb


def test_async_interrupt_traceback_has_no_machinery(raw_kernel):
    """An interrupt that lands in the event loop running an async do_execute: no asyncio,
    selectors or wrapper_kernel frames, just the exception."""
    k = raw_kernel("wk-async")
    msg = k.send("shell", "execute_request", {"code": "nap 30"})
    while k.recv("iopub").msg_type != "stream":
        pass  # "napping": the coroutine awaits, the loop waits in select
    time.sleep(0.05)  # most likely in select by now (elsewhere, author frames may show)
    os.kill(k.proc.pid, signal.SIGINT)
    tb = k.reply("shell", msg, timeout=10).content["traceback"]
    assert tb[-1] == "KeyboardInterrupt", tb
    assert not machinery_lines(tb), tb
    assert not any("asyncio" in line or "selectors.py" in line for line in tb), tb


def test_idle_kernel_survives_sigint(raw_kernel):
    k = raw_kernel("wk-echo")
    for _ in range(3):
        os.kill(k.proc.pid, signal.SIGINT)
    reply, _ = k.execute("alive")
    assert reply.content["status"] == "ok"
    assert k.proc.poll() is None


def test_control_and_heartbeat_answer_during_long_execute(raw_kernel):
    k = raw_kernel("wk-py")
    msg = k.send("shell", "execute_request", {"code": "time.sleep(2)"})
    wait_for_execute_input(k, msg)
    t0 = time.monotonic()
    info = k.send("control", "kernel_info_request")
    assert k.reply("control", info).content["status"] == "ok"
    control_latency = time.monotonic() - t0
    hb = k.ctx.socket(zmq.REQ)
    hb.setsockopt(zmq.LINGER, 0)
    hb.connect(f"tcp://127.0.0.1:{k.info['hb_port']}")
    t0 = time.monotonic()
    hb.send(b"ping")
    assert hb.poll(1000), "heartbeat did not answer while do_execute ran"
    assert hb.recv() == b"ping"
    hb_latency = time.monotonic() - t0
    hb.close(0)
    # The execute is still running: control did not wait for it.
    assert not k.sockets["shell"].poll(0)
    assert control_latency < 0.5, control_latency
    assert hb_latency < 0.5, hb_latency
    assert k.reply("shell", msg, timeout=10).content["status"] == "ok"


def test_shutdown_during_execute_exits(raw_kernel):
    k = raw_kernel("wk-py")
    msg = k.send("shell", "execute_request", {"code": "time.sleep(30)"})
    wait_for_execute_input(k, msg)
    shut = k.send("control", "shutdown_request", {"restart": False})
    assert k.reply("control", shut).content["status"] == "ok"
    assert k.proc.wait(timeout=10) == 0


def _hostile_frames(k: RawKernel) -> list[list[bytes]]:
    good = k.session.msg("execute_request", {"code": "evil", "silent": False})
    unsigned = Session(key=b"").serialize(good)
    wrong = Session(key=b"not-the-key").serialize(good)
    header = json.dumps(good["header"]).encode()
    parts = [header, b"{}", b"{}", b"not json"]
    bad_json = [DELIM, k.session.sign(parts), *parts]
    parts = [b"[1, 2]", b"{}", b"{}", b"{}"]
    header_list = [DELIM, k.session.sign(parts), *parts]
    parts = [b'{"msg_id": "x"}', b"{}", b"{}", b"{}"]
    no_type = [DELIM, k.session.sign(parts), *parts]
    parts = [b"\xff\xfe", b"{}", b"{}", b"{}"]
    not_utf8 = [DELIM, k.session.sign(parts), *parts]
    return [
        unsigned,
        wrong,
        [b"garbage"],
        [DELIM],
        [b"", b"", b""],
        bad_json,
        header_list,
        no_type,
        not_utf8,
        [DELIM, b"sig", b"{}", b"{}"],
    ]


@pytest.mark.parametrize("channel", ["shell", "control"])
def test_bad_frames_are_dropped(raw_kernel, channel):
    k = raw_kernel("wk-echo")
    for frames in _hostile_frames(k):
        k.sockets[channel].send_multipart(frames)
    # A replayed message (valid signature, seen before) is dropped too.
    first = k.session.msg("kernel_info_request")
    frames = k.session.serialize(first)
    k.sockets[channel].send_multipart(frames)
    k.reply(channel, first)
    k.sockets[channel].send_multipart(frames)
    # The next valid request is served, and none of the hostile executes ran.
    msg = k.send(channel, "kernel_info_request")
    assert k.reply(channel, msg).content["status"] == "ok"
    reply, iopub = k.execute("valid")
    assert reply.content["execution_count"] == 1
    assert [m.content["code"] for m in iopub if m.msg_type == "execute_input"] == ["valid"]
    assert k.proc.poll() is None
    out = k.output()
    assert "signature" in out  # dropped and logged


def _wait_heartbeat(info, timeout=20.0):
    """Block until the kernel is serving: its heartbeat echoes."""
    ctx = zmq.Context()
    hb = ctx.socket(zmq.REQ)
    hb.setsockopt(zmq.LINGER, 0)
    hb.connect(f"tcp://127.0.0.1:{info['hb_port']}")
    hb.send(b"ping")
    try:
        assert hb.poll(int(timeout * 1000)), "kernel never answered its heartbeat"
    finally:
        hb.close(0)
        ctx.term()


# How the launcher starts the kernel (it prints the kernel's pid on its stdout):
LAUNCHERS = {
    # The kernel is the launcher's child.
    "direct": (
        "p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)\n"
        "print(p.pid, flush=True)\n"
    ),
    # Through a shell that outlives the launcher (as an environment activator would): the
    # kernel's parent stays alive, JPY_PARENT_PID (set by jupyter_client and kernel_mgmt's
    # launchers) names the launcher.
    "wrapper-shell": (
        "env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))\n"
        "cmd = shlex.join(argv) + ' & echo $!; wait'\n"
        "p = subprocess.Popen(['sh', '-c', cmd], env=env, stdout=subprocess.PIPE, stderr=log)\n"
        "print(int(p.stdout.readline()), flush=True)\n"
    ),
}


@pytest.mark.parametrize("how", list(LAUNCHERS))
def test_kernel_exits_when_launching_process_dies(tmp_path, how):
    """The launcher is SIGKILLed (no chance to clean up): the kernel notices and exits."""
    from kernel_mgmt.connection import write_connection_file

    path, info = write_connection_file(str(tmp_path / "kernel.json"))
    log = tmp_path / "kernel.log"
    launcher_code = (
        "import os, shlex, subprocess, sys, time\n"
        f"argv = {[*KERNEL_ARGV['wk-echo'], '-f', path]!r}\n"
        f"log = open({str(log)!r}, 'wb')\n" + LAUNCHERS[how] + "time.sleep(60)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "JPY_PARENT_PID"}
    launcher = subprocess.Popen(
        [sys.executable, "-c", launcher_code], stdout=subprocess.PIPE, text=True, env=env
    )
    kernel = None
    try:
        kernel = psutil.Process(int(launcher.stdout.readline()))
        _wait_heartbeat(info)  # serving, before the launcher dies
        launcher.kill()
        launcher.wait(10)
        t0 = time.monotonic()
        kernel.wait(timeout=10)  # raises psutil.TimeoutExpired if the kernel lingers
        assert time.monotonic() - t0 < 5
        assert "exited; shutting down" in log.read_text()
    finally:
        launcher.stdout.close()
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(10)
        if kernel is not None and kernel.is_running():
            kernel.kill()


def test_kernel_exits_when_launcher_died_before_it_started(tmp_path):
    """A launcher that dies while the kernel is still importing: the kernel exits at once."""
    from kernel_mgmt.connection import write_connection_file

    path, _ = write_connection_file(str(tmp_path / "kernel.json"))
    log = tmp_path / "kernel.log"
    launcher_code = (
        "import os, subprocess\n"
        f"argv = {[*KERNEL_ARGV['wk-echo'], '-f', path]!r}\n"
        "env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))\n"
        f"log = open({str(log)!r}, 'wb')\n"
        # The kernel must not hold our stdout pipe open, or run() below waits for it.
        "p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)\n"
        "print(p.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    launcher = subprocess.run(
        [sys.executable, "-c", launcher_code], capture_output=True, text=True, timeout=30
    )
    kernel = psutil.Process(int(launcher.stdout))
    try:
        kernel.wait(timeout=10)
        assert "launching process (JPY_PARENT_PID)" in log.read_text()
    finally:
        if kernel.is_running():
            kernel.kill()


def test_interrupt_while_publishing_keeps_iopub_intact(raw_kernel):
    """SIGINT while do_execute is in the middle of sending a multipart IOPub message.

    A KeyboardInterrupt between two frames would leave half a message in the socket, and the
    next message (the `error`, or the `idle` every client waits for) would be glued onto it
    and rejected by the client. Every IOPub message must stay whole.
    """
    k = raw_kernel("wk-py")
    # Messages with many frames (buffers, as comms send them) make the window wide. A bounded
    # burst, then a sleep: never more messages than IOPub's high-water mark would keep.
    code = (
        "for _ in range(300):\n"
        "    kernel.send_response(kernel.iopub_socket, 'display_data',\n"
        "        {'data': {'text/plain': 'x'}, 'metadata': {}}, buffers=[b'x'] * 100)\n"
        "time.sleep(30)"
    )
    for _ in range(15):
        msg = k.send("shell", "execute_request", {"code": code})
        wait_for_execute_input(k, msg)
        time.sleep(0.002)  # let output flow
        os.kill(k.proc.pid, signal.SIGINT)
        assert k.reply("shell", msg).content["ename"] == "KeyboardInterrupt"
        # iopub_until_idle deserializes (and verifies) every message up to the idle status.
        iopub = k.iopub_until_idle(msg)
        assert [m.msg_type for m in iopub].count("error") == 1
    reply, _ = k.execute("6*7")
    assert reply.content["status"] == "ok"


def test_base_exceptions_from_handlers_are_error_replies(raw_kernel):
    """CancelledError (a BaseException) out of author code is an error reply, not a dead kernel."""
    k = raw_kernel("wk-py")
    reply, iopub = k.execute("raise asyncio.CancelledError()")
    assert reply.content["status"] == "error"
    assert reply.content["ename"] == "CancelledError"
    assert [m.msg_type for m in iopub].count("error") == 1
    reply, _ = k.execute("raise GeneratorExit")
    assert reply.content["ename"] == "GeneratorExit"
    k.execute(
        "async def _cancelled(code):\n    raise asyncio.CancelledError()\n"
        "kernel.do_is_complete = _cancelled"
    )
    msg = k.send("shell", "is_complete_request", {"code": "x"})
    assert k.reply("shell", msg).content["status"] == "error"
    reply, _ = k.execute("6*7")
    assert reply.content["status"] == "ok"
    assert k.proc.poll() is None


@pytest.fixture
def live_parent(monkeypatch):
    """A live process of ours that the watch code sees as its parent (``os.getppid()``).

    The watch tells "orphaned" (parent is init) from "parent alive"; this test process's own
    parent depends on how the suite was launched (a backgrounded or nohup'ed run is
    reparented to init once its shell exits), so the parent these tests describe is made
    here, with a parent of its own (a grandparent that is not this process): its real /proc
    ancestry is what the watch walks.
    """
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(child.pid, flush=True)\n"
        "child.wait()\n"
    )
    grandparent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        parent = int(grandparent.stdout.readline())
        monkeypatch.setattr(os, "getppid", lambda: parent)
        yield parent
        os.kill(parent, signal.SIGKILL)  # its parent reaps it and exits
        grandparent.wait(10)
    finally:
        grandparent.stdout.close()
        if grandparent.poll() is None:
            grandparent.kill()
            grandparent.wait(10)


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_parent_watch_notices_a_dead_launcher(monkeypatch, pidfd, live_parent):
    """The watch on JPY_PARENT_PID, with Linux pidfds and with the polling used elsewhere."""
    import select

    from wrapper_kernel import parentwatch as server
    from wrapper_kernel.parentwatch import _ParentWatch

    if not pidfd:

        def no_pidfd(pid):
            raise OSError("pidfd_open is not available")

        monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    # Our child stands in for an ancestor (the launcher of a kernel started through a wrapper);
    # the real ancestry walk is tested below and by the launcher tests above.
    real_ancestors = server._ancestors
    monkeypatch.setattr(server, "_ancestors", lambda ppid: [*real_ancestors(ppid), launcher.pid])
    watch = _ParentWatch(os.getppid(), str(launcher.pid))
    try:
        assert watch.ignored is None
        assert watch.needs_polling is not pidfd
        assert watch.gone(()) is None
        launcher.kill()
        launcher.wait(10)
        ready = select.select(list(watch.fds), [], [], 5)[0] if pidfd else []
        gone = watch.gone(ready)
        assert gone == f"launching process (JPY_PARENT_PID) {launcher.pid}"
    finally:
        watch.close()
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(10)
    # A JPY_PARENT_PID that names no process, once we are orphaned (our parent is init): the
    # launcher died before we started.
    orphan = _ParentWatch(1, str(launcher.pid))
    try:
        assert orphan.gone(()) == f"launching process (JPY_PARENT_PID) {launcher.pid}"
    finally:
        orphan.close()
    # The same while our parent is alive: a stale value, ignored.
    stale = _ParentWatch(os.getppid(), str(launcher.pid))
    try:
        assert stale.gone(()) is None
        assert stale.ignored is not None and "names no running process" in stale.ignored
        assert set(stale.pids) == {os.getppid()}
    finally:
        stale.close()


def test_parent_watch_ignores_a_live_process_that_is_no_ancestor(live_parent):
    """A JPY_PARENT_PID naming a live process that did not launch us (a reused pid): unwatched."""
    from wrapper_kernel.parentwatch import _ParentWatch

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        watch = _ParentWatch(os.getppid(), str(other.pid))
        try:
            assert set(watch.pids) == {os.getppid()}
            assert f"JPY_PARENT_PID={other.pid} is not an ancestor" in (watch.ignored or "")
        finally:
            watch.close()
        # Our own parent's parent is an ancestor: watched.
        grandparent = psutil.Process(os.getppid()).ppid()
        if grandparent > 1:
            watch = _ParentWatch(os.getppid(), str(grandparent))
            try:
                assert watch.ignored is None and set(watch.pids) == {os.getppid(), grandparent}
            finally:
                watch.close()
    finally:
        other.kill()
        other.wait(10)


def test_ancestors_reads_the_proc_ppid_chain():
    """Up to init, as psutil sees it; a parent whose name holds ') (' and spaces is parsed."""
    from wrapper_kernel.parentwatch import _ancestors

    if _ancestors(os.getppid()) is None:
        pytest.skip("no /proc here: only JPY_PARENT_PID == our parent is trusted")
    assert _ancestors(os.getppid()) == [p.pid for p in psutil.Process().parents()]
    code = (
        "import subprocess, sys\n"
        "with open('/proc/self/comm', 'w') as f:\n    f.write('odd) (name 1 2')\n"
        "grandchild = 'import os; from wrapper_kernel.parentwatch import _ancestors; "
        "print(_ancestors(os.getppid()))'\n"
        "subprocess.run([sys.executable, '-c', grandchild], timeout=30)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    chain = json.loads(p.stdout)
    assert chain[1:] == [os.getpid(), *(q.pid for q in psutil.Process().parents())]


def _launch_kernel_with_jpy(tmp_path, jpy_parent):
    """A launcher (our child) that starts a kernel as its child with JPY_PARENT_PID set to
    *jpy_parent*: ``(launcher, kernel process, connection info, kernel log path)``."""
    from kernel_mgmt.connection import write_connection_file

    path, info = write_connection_file(str(tmp_path / "kernel.json"))
    log = tmp_path / "kernel.log"
    launcher_code = (
        "import os, subprocess, time\n"
        f"argv = {[*KERNEL_ARGV['wk-echo'], '-f', path]!r}\n"
        f"env = dict(os.environ, JPY_PARENT_PID={str(jpy_parent)!r})\n"
        f"log = open({str(log)!r}, 'wb')\n"
        "p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    launcher = subprocess.Popen(
        [sys.executable, "-c", launcher_code], stdout=subprocess.PIPE, text=True
    )
    return launcher, psutil.Process(int(launcher.stdout.readline())), info, log


def _stop(launcher, kernel):
    launcher.stdout.close()
    if launcher.poll() is None:
        launcher.kill()
        launcher.wait(10)
    if kernel is not None and kernel.is_running():
        kernel.kill()
        kernel.wait(10)


def test_stale_dead_jpy_parent_pid_is_ignored(tmp_path):
    """JPY_PARENT_PID names a dead process but the kernel's parent is alive (a value inherited
    from an earlier session): the kernel keeps serving, and still exits with its parent."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(10)
    launcher, kernel, info, log = _launch_kernel_with_jpy(tmp_path, gone.pid)
    try:
        _wait_heartbeat(info)
        time.sleep(0.5)  # a watch trusting the value would have shut down at start-up
        assert kernel.is_running()
        _wait_heartbeat(info, timeout=5)
        assert f"JPY_PARENT_PID={gone.pid} names no running process" in log.read_text()
        launcher.kill()
        launcher.wait(10)
        kernel.wait(timeout=10)
        assert "parent process" in log.read_text()
    finally:
        _stop(launcher, kernel)


def test_jpy_parent_pid_of_an_unrelated_process_is_ignored(tmp_path):
    """JPY_PARENT_PID names a live process that is not the kernel's ancestor: its death does
    not stop the kernel; the death of the kernel's real parent does."""
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    launcher = kernel = None
    try:
        launcher, kernel, info, log = _launch_kernel_with_jpy(tmp_path, unrelated.pid)
        _wait_heartbeat(info)
        assert f"JPY_PARENT_PID={unrelated.pid} is not an ancestor" in log.read_text()
        unrelated.kill()
        unrelated.wait(10)
        time.sleep(0.5)  # a pidfd on it would have fired by now
        assert kernel.is_running()
        _wait_heartbeat(info, timeout=5)
        launcher.kill()
        launcher.wait(10)
        t0 = time.monotonic()
        kernel.wait(timeout=10)
        assert time.monotonic() - t0 < 5
        assert f"parent process {launcher.pid} exited" in log.read_text()
    finally:
        if unrelated.poll() is None:
            unrelated.kill()
            unrelated.wait(10)
        if launcher is not None:
            _stop(launcher, kernel)
