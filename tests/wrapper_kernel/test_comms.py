"""Comms in a wrapper kernel, with jupyter_client as the frontend: ipywidgets 8 in the
Python-evaluating test kernel (kernels/pykernel.py), comm targets, comm_info, errors.

The kernel is a real process started by jupyter_client's KernelManager from a private
kernelspec; the test plays JupyterLab's widget manager: it reads ``comm_open`` and
``display_data``, sends ``comm_msg`` updates and reads the kernel's.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

from .conftest import RawKernel
from .repl_helpers import readme_example


@pytest.fixture
def kc(jupyter_dirs) -> Iterator[Any]:
    km = KernelManager(kernel_name="wk-py")
    km.start_kernel()
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


def iopub_for(kc: Any, msg_id: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """IOPub messages whose parent is ``msg_id``, up to its ``idle``."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        out.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return out


def shell_reply(kc: Any, msg_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The shell reply to ``msg_id``; others are skipped (wait_for_ready may have sent more
    than one kernel_info_request on a busy machine, and their replies come late)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def execute(kc: Any, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    msg_id = kc.execute(code)
    reply = shell_reply(kc, msg_id)
    return reply["content"], iopub_for(kc, msg_id)


def stdout(iopub: list[dict[str, Any]]) -> str:
    return "".join(m["content"]["text"] for m in iopub if m["msg_type"] == "stream")


def frontend_send(kc: Any, msg_type: str, content: dict[str, Any], **kw: Any) -> str:
    """Send a comm message as a frontend does (shell channel); return its msg_id."""
    msg = kc.session.msg(msg_type, content, **kw)
    kc.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def comm_info(kc: Any, target_name: str | None = None) -> dict[str, Any]:
    reply = shell_reply(kc, kc.comm_info(target_name))
    assert reply["content"]["status"] == "ok"
    return reply["content"]["comms"]


def test_ipywidgets_slider_round_trip(kc):
    # The comm package is not imported before the cell: the hook must catch its first import.
    reply, iopub = execute(kc, "import sys; print('comm' in sys.modules)")
    assert stdout(iopub) == "False\n"

    reply, iopub = execute(kc, "import ipywidgets\nw = ipywidgets.IntSlider(value=3)\ndisplay(w)")
    assert reply["status"] == "ok", reply
    opens = [m for m in iopub if m["msg_type"] == "comm_open"]
    assert opens and all(m["content"]["target_name"] == "jupyter.widget" for m in opens)
    shown = [m for m in iopub if m["msg_type"] == "display_data"]
    assert len(shown) == 1
    view = shown[0]["content"]["data"]["application/vnd.jupyter.widget-view+json"]
    slider = next(m for m in opens if m["content"]["comm_id"] == view["model_id"])
    assert slider["content"]["data"]["state"]["_model_name"] == "IntSliderModel"
    assert slider["content"]["data"]["state"]["value"] == 3
    assert slider["metadata"]["version"].startswith("2.")
    cid = view["model_id"]

    # The frontend moves the slider.
    update = {"method": "update", "state": {"value": 7}, "buffer_paths": []}
    msg_id = frontend_send(kc, "comm_msg", {"comm_id": cid, "data": update})
    errors = [m for m in iopub_for(kc, msg_id) if m["msg_type"] == "error"]
    assert not errors
    reply, iopub = execute(kc, "print(w.value)")
    assert stdout(iopub) == "7\n"

    # The kernel changes the value: the update goes back to the frontend's model.
    reply, iopub = execute(kc, "w.value = 9")
    updates = [
        m["content"]
        for m in iopub
        if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == cid
    ]
    assert any(
        u["data"]["method"] == "update" and u["data"]["state"] == {"value": 9} for u in updates
    )

    # comm_info lists the widget's comms, filtered by target.
    widgets = comm_info(kc, "jupyter.widget")
    assert widgets[cid] == {"target_name": "jupyter.widget"}
    assert comm_info(kc, "no.such.target") == {}
    assert cid in comm_info(kc)

    # Closing from the kernel sends comm_close and drops it from comm_info.
    reply, iopub = execute(kc, "w.close()")
    assert any(m["msg_type"] == "comm_close" and m["content"]["comm_id"] == cid for m in iopub)
    assert cid not in comm_info(kc)


def test_widget_control_comm_opened_by_the_frontend(kc):
    """JupyterLab opens ``jupyter.widget.control`` and asks for every widget's state;
    ipywidgets registers that target only inside IPython, so the manager does it on demand."""
    execute(kc, "import ipywidgets\ns = ipywidgets.Text(value='hi')")
    cid = "control-comm-1"
    msg_id = frontend_send(
        kc,
        "comm_open",
        {"comm_id": cid, "target_name": "jupyter.widget.control", "data": {}},
        metadata={"version": "1.0.0"},
    )
    got = iopub_for(kc, msg_id)
    assert not [m for m in got if m["msg_type"] in ("comm_close", "error")], got
    assert comm_info(kc, "jupyter.widget.control") == {
        cid: {"target_name": "jupyter.widget.control"}
    }
    msg_id = frontend_send(kc, "comm_msg", {"comm_id": cid, "data": {"method": "request_states"}})
    states = [m for m in iopub_for(kc, msg_id) if m["msg_type"] == "comm_msg"]
    assert states and states[0]["content"]["data"]["method"] == "update_states"
    values = [s["state"].get("value") for s in states[0]["content"]["data"]["states"].values()]
    assert "hi" in values


def test_kernel_targets_errors_and_unknown_targets(kc):
    """An author's target: opened by the frontend, messages both ways, closed by the
    frontend; a handler that raises is reported and the kernel carries on; an unknown target
    is answered with comm_close."""
    code = (
        "seen = []\n"
        "def target(comm, msg):\n"
        "    seen.append(msg['content']['data'])\n"
        "    def on_msg(m):\n"
        "        if m['content']['data'].get('boom'):\n"
        "            raise ValueError('handler failed')\n"
        "        comm.send({'echo': m['content']['data']})\n"
        "    comm.on_msg(on_msg)\n"
        "    comm.on_close(lambda m: seen.append('closed'))\n"
        "kernel.comm_manager.register_target('echo.target', target)\n"
        "kernel.comm_manager.register_target('bad.target', lambda c, m: 1 / 0)\n"
    )
    reply, _ = execute(kc, code)
    assert reply["status"] == "ok", reply
    msg_id = frontend_send(
        kc, "comm_open", {"comm_id": "c1", "target_name": "echo.target", "data": {"a": 1}}
    )
    iopub_for(kc, msg_id)
    msg_id = frontend_send(kc, "comm_msg", {"comm_id": "c1", "data": {"x": 2}})
    echoed = [m for m in iopub_for(kc, msg_id) if m["msg_type"] == "comm_msg"]
    assert [m["content"]["data"] for m in echoed] == [{"echo": {"x": 2}}]
    assert echoed[0]["parent_header"]["msg_id"] == msg_id

    msg_id = frontend_send(kc, "comm_msg", {"comm_id": "c1", "data": {"boom": True}})
    errors = [m for m in iopub_for(kc, msg_id) if m["msg_type"] == "error"]
    assert errors and errors[0]["content"]["ename"] == "ValueError"
    assert "handler failed" in errors[0]["content"]["evalue"]

    msg_id = frontend_send(kc, "comm_close", {"comm_id": "c1", "data": {}})
    iopub_for(kc, msg_id)
    reply, iopub = execute(kc, "print(seen)")
    assert stdout(iopub) == "[{'a': 1}, 'closed']\n"
    assert "c1" not in comm_info(kc)

    for target in ("bad.target", "nobody.here"):
        msg_id = frontend_send(kc, "comm_open", {"comm_id": f"x-{target}", "target_name": target})
        got = iopub_for(kc, msg_id)
        closes = [m for m in got if m["msg_type"] == "comm_close"]
        assert [m["content"]["comm_id"] for m in closes] == [f"x-{target}"]
        assert (target == "bad.target") == any(m["msg_type"] == "error" for m in got)
    assert comm_info(kc) == {}
    reply, iopub = execute(kc, "print('alive')")
    assert stdout(iopub) == "alive\n"


def test_kernel_opened_comm_and_honest_kernel_info(kc):
    code = (
        "import comm\n"
        "c = comm.create_comm(target_name='my.frontend.target', data={'hello': 1})\n"
        "manager = kernel.comm_manager\n"
        "print(comm.get_comm_manager() is manager, c.comm_id in manager.comms)"
    )
    reply, iopub = execute(kc, code)
    assert reply["status"] == "ok", reply
    assert stdout(iopub) == "True True\n"
    opened = [m for m in iopub if m["msg_type"] == "comm_open"]
    assert opened[0]["content"]["target_name"] == "my.frontend.target"
    assert opened[0]["content"]["data"] == {"hello": 1}
    assert list(comm_info(kc, "my.frontend.target").values()) == [
        {"target_name": "my.frontend.target"}
    ]
    info = shell_reply(kc, kc.kernel_info())
    # Comms are part of the protocol, not a feature flag: nothing new is advertised.
    assert info["content"]["supported_features"] == []
    assert info["content"]["debugger"] is False


def test_readme_comm_example(tmp_path):
    """The README's counter kernel, extracted and run: a frontend opens its comm and counts."""
    script = tmp_path / "counter.py"
    script.write_text(readme_example("comms"))
    k = RawKernel([sys.executable, str(script)], tmp_path)
    try:
        k.wait_ready()
        opened = k.send("shell", "comm_open", {"comm_id": "n1", "target_name": "counter"})
        assert not [m for m in k.iopub_until_idle(opened) if m.msg_type == "comm_close"]
        counts = []
        for add in (2, 3):
            msg = k.send("shell", "comm_msg", {"comm_id": "n1", "data": {"add": add}})
            counts += [
                m.content["data"] for m in k.iopub_until_idle(msg) if m.msg_type == "comm_msg"
            ]
        assert counts == [{"count": 2}, {"count": 5}]
        info = k.reply("shell", k.send("shell", "comm_info_request", {}))
        assert info.content["comms"] == {"n1": {"target_name": "counter"}}
    finally:
        k.close()
