"""Protocol 5.3 behaviour of wrapper_kernel, checked frame by frame with a hand-driven client."""

from __future__ import annotations

import pytest

from kernel_mgmt.protocol import PROTOCOL_VERSION


def types(msgs):
    return [m.msg_type for m in msgs]


def test_kernel_info_on_shell_and_control(raw_kernel):
    k = raw_kernel("wk-echo")
    for channel in ("shell", "control"):
        msg = k.send(channel, "kernel_info_request")
        reply = k.reply(channel, msg)
        c = reply.content
        assert reply.msg_type == "kernel_info_reply"
        assert c["status"] == "ok"
        assert c["protocol_version"] == PROTOCOL_VERSION
        assert c["implementation"] == "Echo"
        assert c["language_info"]["name"] == "echo"
        assert c["banner"].startswith("Echo kernel")
        # Only what is real: no debugger, no subshells.
        assert c["debugger"] is False
        assert c["supported_features"] == []
        statuses = [m.content["execution_state"] for m in k.iopub_until_idle(msg)]
        assert statuses == ["busy", "idle"]


def test_execute_order_and_counts(raw_kernel):
    k = raw_kernel("wk-echo")
    reply, iopub = k.execute("hi")
    assert types(iopub) == ["status", "execute_input", "stream", "status"]
    assert iopub[1].content == {"code": "hi", "execution_count": 1}
    assert iopub[2].content == {"name": "stdout", "text": "hi"}
    assert reply.content["status"] == "ok"
    assert reply.content["execution_count"] == 1
    # silent: no execute_input, no output, count unchanged (spec: silent implies no history)
    reply, iopub = k.execute("quiet", silent=True)
    assert types(iopub) == ["status", "status"]
    assert reply.content["execution_count"] == 1
    # store_history=False: output, but the count does not move
    reply, iopub = k.execute("nohist", store_history=False)
    assert types(iopub) == ["status", "execute_input", "stream", "status"]
    assert reply.content["execution_count"] == 1
    reply, _ = k.execute("again")
    assert reply.content["execution_count"] == 2


def test_exception_in_do_execute_is_an_error_reply(raw_kernel):
    k = raw_kernel("wk-py")
    reply, iopub = k.execute("1/0")
    assert reply.content["status"] == "error"
    assert reply.content["ename"] == "ZeroDivisionError"
    assert any("ZeroDivisionError" in line for line in reply.content["traceback"])
    errors = [m for m in iopub if m.msg_type == "error"]
    assert len(errors) == 1 and errors[0].content["ename"] == "ZeroDivisionError"
    # the kernel lives on
    reply, _ = k.execute("6*7")
    assert reply.content["status"] == "ok"


def test_error_traceback_shows_the_authors_frames(raw_kernel):
    """Tracebacks start at the author's do_execute (not the base's _dispatch_shell/_execute)
    and end where the error was raised, chained exceptions too; the IOPub error is the same."""
    from .test_faults import machinery_lines

    k = raw_kernel("wk-py")
    code = (
        "def f():\n    1/0\n"
        "try:\n    f()\nexcept Exception as e:\n    raise ValueError('bad') from e"
    )
    msg = k.send("shell", "execute_request", {"code": code})
    tb = k.reply("shell", msg).content["traceback"]
    error = next(m for m in k.iopub_until_idle(msg) if m.msg_type == "error")
    assert error.content["traceback"] == tb
    assert not machinery_lines(tb), tb
    assert not any("_dispatch" in line or "in _execute" in line for line in tb), tb
    starts = [i for i, line in enumerate(tb) if line == "Traceback (most recent call last):"]
    assert len(starts) == 2, tb  # the cause (caught in the cell), then the ValueError
    cause, final = tb[starts[0] : starts[1]], tb[starts[1] :]
    assert cause[1:3] == ['  File "<cell>", line 4, in <module>', '  File "<cell>", line 2, in f']
    assert "pykernel.py" in final[1] and "in do_execute" in final[1], tb
    assert final[-2:] == ['  File "<cell>", line 6, in <module>', "ValueError: bad"], tb

    # input() without allow_stdin raises inside the base (raw_input): the traceback ends at
    # the author's call, with the base's message.
    reply, _ = k.execute("input('?')", allow_stdin=False)
    tb = reply.content["traceback"]
    assert not machinery_lines(tb), tb
    assert tb[-2] == '  File "<cell>", line 1, in <module>', tb
    assert tb[-1].startswith("wrapper_kernel.kernelbase.StdinNotImplementedError: "), tb

    # An async do_execute: no asyncio frames from the loop the base runs it on.
    k = raw_kernel("wk-async")
    tb = k.execute("fail")[0].content["traceback"]
    assert tb[0] == "Traceback (most recent call last):", tb
    assert "async_kernel.py" in tb[1] and "in do_execute" in tb[1], tb
    assert not machinery_lines(tb) and not any("asyncio" in line for line in tb), tb
    assert tb[-1] == "ValueError: async failure", tb

    # The shipped examples are author code: their frames stay.
    k = raw_kernel("wk-plot")
    tb = k.execute("y = = x")[0].content["traceback"]
    assert any("examples" in line and "plot.py" in line for line in tb), tb


def test_stop_on_error_aborts_queued_executes(raw_kernel):
    k = raw_kernel("wk-py")
    first = k.send("shell", "execute_request", {"code": "time.sleep(0.3); 1/0"})
    queued = [k.send("shell", "execute_request", {"code": f"{i}"}) for i in range(3)]
    info = k.send("shell", "kernel_info_request")
    assert k.reply("shell", first).content["status"] == "error"
    for msg in queued:
        assert k.reply("shell", msg).content["status"] == "aborted"
    # a non-execute request queued behind them is still served
    assert k.reply("shell", info).content["status"] == "ok"
    # and later executes run normally
    reply, _ = k.execute("6*7")
    assert reply.content["status"] == "ok"


def test_stop_on_error_false_keeps_queue(raw_kernel):
    k = raw_kernel("wk-py")
    first = k.send(
        "shell", "execute_request", {"code": "time.sleep(0.2); 1/0", "stop_on_error": False}
    )
    second = k.send("shell", "execute_request", {"code": "6*7"})
    assert k.reply("shell", first).content["status"] == "error"
    assert k.reply("shell", second).content["status"] == "ok"


def test_shutdown_on_control_echoes_restart(raw_kernel):
    k = raw_kernel("wk-echo")
    msg = k.send("control", "shutdown_request", {"restart": True})
    reply = k.reply("control", msg)
    assert reply.content == {"status": "ok", "restart": True}
    assert k.proc.wait(timeout=10) == 0


def test_shutdown_on_shell(raw_kernel):
    k = raw_kernel("wk-echo")
    msg = k.send("shell", "shutdown_request", {"restart": False})
    assert k.reply("shell", msg).content == {"status": "ok", "restart": False}
    assert k.proc.wait(timeout=10) == 0


def test_comms_and_unknown_messages(raw_kernel):
    k = raw_kernel("wk-echo")
    msg = k.send("shell", "comm_info_request", {})
    assert k.reply("shell", msg).content == {"status": "ok", "comms": {}}
    k.iopub_until_idle(msg)
    # comm_open to a target we do not host: the spec answers with comm_close
    msg = k.send("shell", "comm_open", {"comm_id": "c1", "target_name": "nope", "data": {}})
    iopub = k.iopub_until_idle(msg)
    assert types(iopub) == ["status", "comm_close", "status"]
    assert iopub[1].content["comm_id"] == "c1"
    # an unknown request: busy/idle and no crash
    msg = k.send("shell", "frobnicate_request", {})
    assert types(k.iopub_until_idle(msg)) == ["status", "status"]
    msg = k.send("control", "debug_request", {})
    assert types(k.iopub_until_idle(msg)) == ["status", "status"]
    reply, _ = k.execute("still here")
    assert reply.content["status"] == "ok"


def test_default_handlers(raw_kernel):
    k = raw_kernel("wk-echo")
    msg = k.send("shell", "complete_request", {"code": "ab", "cursor_pos": 2})
    c = k.reply("shell", msg).content
    assert c["status"] == "ok" and c["matches"] == [] and c["cursor_start"] == 2
    msg = k.send("shell", "inspect_request", {"code": "ab", "cursor_pos": 2})
    assert k.reply("shell", msg).content["found"] is False
    msg = k.send("shell", "is_complete_request", {"code": "ab"})
    assert k.reply("shell", msg).content == {"status": "unknown"}
    msg = k.send("shell", "history_request", {"hist_access_type": "tail", "n": 3})
    assert k.reply("shell", msg).content == {"status": "ok", "history": []}
    msg = k.send("shell", "interrupt_request", {})
    assert k.reply("shell", msg).content == {"status": "ok"}


def test_iopub_welcome_for_every_subscriber(raw_kernel):
    import zmq

    k = raw_kernel("wk-echo")  # wait_ready already required one welcome
    sub = k.ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://127.0.0.1:{k.info['iopub_port']}")
    try:
        assert sub.poll(5000), "second subscriber got no iopub_welcome"
        msg = k.session.deserialize(sub.recv_multipart())
        assert msg.msg_type == "iopub_welcome"
        assert msg.content == {"subscription": ""}
    finally:
        sub.close(0)


def test_stdin_input_request(raw_kernel):
    k = raw_kernel("wk-py")
    msg = k.send(
        "shell", "execute_request", {"code": "name = input('who? ')\nname", "allow_stdin": True}
    )
    req = k.recv("stdin")
    assert req.msg_type == "input_request"
    assert req.content == {"prompt": "who? ", "password": False}
    assert req.parent_header["msg_id"] == msg.msg_id
    k.session.send(k.sockets["stdin"], "input_reply", {"value": "ada"}, parent=req)
    assert k.reply("shell", msg).content["status"] == "ok"
    results = [m for m in k.iopub_until_idle(msg) if m.msg_type == "execute_result"]
    assert results[0].content["data"]["text/plain"] == "'ada'"


def test_input_without_allow_stdin_is_an_error(raw_kernel):
    k = raw_kernel("wk-py")
    reply, _ = k.execute("input('x')", allow_stdin=False)
    assert reply.content["status"] == "error"
    assert reply.content["ename"] == "StdinNotImplementedError"


@pytest.mark.parametrize("name", ["wk-seed-plot"])
def test_seed_plot_mistakes_are_repaired(raw_kernel, name):
    import base64

    k = raw_kernel(name)
    reply, iopub = k.execute("y = sin(x)")
    assert reply.content["status"] == "ok"
    stream = next(m for m in iopub if m.msg_type == "stream")
    assert stream.content["text"] == "Plotting 1 function(s)"  # seed sent it under 'data'
    png = next(m for m in iopub if m.msg_type == "display_data").content["data"]["image/png"]
    assert base64.b64decode(png, validate=True)[:8] == b"\x89PNG\r\n\x1a\n"  # was URL-quoted
    assert "'data'; the key is 'text'" in k.output()


def test_async_handlers(raw_kernel):
    k = raw_kernel("wk-async")
    reply, iopub = k.execute("sleep 0.01")
    assert reply.content["status"] == "ok"
    assert types(iopub) == [
        "status",
        "execute_input",
        "stream",
        "display_data",
        "update_display_data",
        "status",
    ]
    assert iopub[2].content["text"] == "async sleep 0.01\n"
    assert iopub[3].content["transient"] == {"display_id": "d1"}
    reply, iopub = k.execute("fail")
    assert reply.content["ename"] == "ValueError"
    msg = k.send("shell", "is_complete_request", {"code": "x;"})
    assert k.reply("shell", msg).content["status"] == "complete"
    # An interrupt reaches an awaiting coroutine too.
    msg = k.send("shell", "execute_request", {"code": "sleep 30"})
    while k.recv("iopub").msg_type != "execute_input":
        pass  # the execute has started (queued interrupts are a different test)
    intr = k.send("control", "interrupt_request")
    k.reply("control", intr)
    assert k.reply("shell", msg).content["ename"] == "KeyboardInterrupt"
    reply, _ = k.execute("after")
    assert reply.content["status"] == "ok"
    msg = k.send("control", "shutdown_request", {"restart": False})
    assert k.reply("control", msg).content == {"status": "ok", "restart": False}
    assert k.proc.wait(timeout=10) == 0


def test_getpass_over_stdin(raw_kernel):
    k = raw_kernel("wk-async")
    msg = k.send("shell", "execute_request", {"code": "password", "allow_stdin": True})
    req = k.recv("stdin")
    assert req.content == {"prompt": "secret: ", "password": True}
    k.session.send(k.sockets["stdin"], "input_reply", {"value": "hunter2"}, parent=req)
    assert k.reply("shell", msg).content["status"] == "ok"
    texts = [m.content["text"] for m in k.iopub_until_idle(msg) if m.msg_type == "stream"]
    assert texts[0] == "got 7 characters\n"


def test_iopub_welcome_while_output_streams(raw_kernel):
    """A client subscribing while the kernel publishes output still gets its welcome promptly."""
    import time

    import zmq

    k = raw_kernel("wk-py")
    code = "for i in range(400):\n    print(i)\n    time.sleep(0.005)"
    msg = k.send("shell", "execute_request", {"code": code})
    while k.recv("iopub").msg_type != "stream":
        pass  # output is flowing
    sub = k.ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://127.0.0.1:{k.info['iopub_port']}")
    try:
        deadline = time.monotonic() + 5
        while True:
            assert sub.poll(max(1, int((deadline - time.monotonic()) * 1000))), "no welcome"
            got = k.session.deserialize(sub.recv_multipart())
            if got.msg_type == "iopub_welcome":
                break
        # The welcome came while the execute was still running (it takes >= 2 s).
        assert not k.sockets["shell"].poll(0)
    finally:
        sub.close(0)
    assert k.reply("shell", msg, timeout=30).content["status"] == "ok"


def test_unserializable_reply_becomes_error_reply(raw_kernel):
    k = raw_kernel("wk-py")
    # The Python test kernel can patch itself: make do_is_complete return a non-JSON value.
    reply, _ = k.execute("kernel.do_is_complete = lambda code: {'status': object()}")
    assert reply.content["status"] == "ok"
    msg = k.send("shell", "is_complete_request", {"code": "x"})
    c = k.reply("shell", msg).content
    assert c["status"] == "error" and "not JSON" in c["evalue"]
    reply, _ = k.execute("1")
    assert reply.content["status"] == "ok"


def test_non_dict_execute_reply_is_an_error_reply(raw_kernel):
    k = raw_kernel("wk-py")
    k.execute("kernel.do_execute = lambda *a, **kw: 'not a dict'")
    reply, _ = k.execute("anything")
    assert reply.content["status"] == "error"
    assert "must return a dict" in reply.content["evalue"]


@pytest.mark.parametrize("channel", ["control", "shell"])
def test_shutdown_calls_do_shutdown(raw_kernel, tmp_path, channel):
    """do_shutdown runs with the request's restart flag before the reply; the process exits."""
    k = raw_kernel("wk-py")
    marker = tmp_path / "shutdown.txt"
    code = (
        "def _shutdown(restart):\n"
        f"    open({str(marker)!r}, 'w').write(repr(restart))\n"
        "    return {'status': 'ok', 'restart': restart}\n"
        "kernel.do_shutdown = _shutdown"
    )
    reply, _ = k.execute(code)
    assert reply.content["status"] == "ok"
    msg = k.send(channel, "shutdown_request", {"restart": True})
    assert k.reply(channel, msg).content == {"status": "ok", "restart": True}
    assert marker.read_text() == "True"  # written before the reply was sent
    assert k.proc.wait(timeout=10) == 0


def test_getpass_module_routed_to_stdin(raw_kernel):
    """`import getpass; getpass.getpass()` in a cell asks the frontend, as input() does."""
    k = raw_kernel("wk-py")
    code = "import getpass\nlen(getpass.getpass('pw: '))"
    msg = k.send("shell", "execute_request", {"code": code, "allow_stdin": True})
    req = k.recv("stdin", timeout=5)
    assert req.content == {"prompt": "pw: ", "password": True}
    k.session.send(k.sockets["stdin"], "input_reply", {"value": "s3cret"}, parent=req)
    assert k.reply("shell", msg).content["status"] == "ok"
    results = [m for m in k.iopub_until_idle(msg) if m.msg_type == "execute_result"]
    assert results[0].content["data"]["text/plain"] == "6"


def test_update_display_needs_a_display_id():
    """update_display_data without transient.display_id is invalid (spec, "Update Display Data")."""
    from wrapper_kernel import Kernel

    with pytest.raises(ValueError, match="display_id"):
        Kernel().display({"text/plain": "x"}, update=True)


def test_plot_example_errors_are_error_replies(raw_kernel):
    """The plot example: a bad line is an error reply naming it; the kernel carries on."""
    import base64

    k = raw_kernel("wk-plot")
    reply, iopub = k.execute("y = sin(x")
    assert reply.content["status"] == "error"
    assert reply.content["ename"] == "PlotSyntaxError"
    assert "line 1" in reply.content["evalue"]
    assert types(iopub).count("error") == 1
    reply, _ = k.execute("y = x\ny = nosuchfunction(x)", stop_on_error=False)
    assert reply.content["ename"] == "NameError"
    reply, iopub = k.execute("y = sin(x)\n\ny = x**2 / 10")  # a blank line is skipped
    assert reply.content["status"] == "ok"
    assert [m.content["text"] for m in iopub if m.msg_type == "stream"] == [
        "Plotting 2 function(s)\n"
    ]
    (display,) = [m for m in iopub if m.msg_type == "display_data"]
    png = base64.b64decode(display.content["data"]["image/png"], validate=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    msg = k.send("shell", "complete_request", {"code": "y = arcs", "cursor_pos": 8})
    c = k.reply("shell", msg).content
    assert "arcsin" in c["matches"] and c["cursor_start"] == 4
    assert k.proc.poll() is None
