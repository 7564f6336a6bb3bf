"""Real peers drive our kernels: jupyter_client's KernelManager, nbclient, kernel_mgmt's client."""

from __future__ import annotations

import base64
import sys
import time

import pytest
from jupyter_client.manager import KernelManager

from kernel_mgmt.client_base import KernelClient
from kernel_mgmt.subproc.launcher import SubprocessIPCKernelLauncher, SubprocessKernelLauncher


@pytest.fixture(autouse=True)
def _jupyter(jupyter_dirs):
    return jupyter_dirs


def _wait_running(kc, msg_id, timeout=10.0):
    """Wait for the execute_input of ``msg_id``: the kernel is inside do_execute."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_input":
            return
    raise TimeoutError("the execute never started")


def _reply(kc, msg_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


@pytest.mark.parametrize("kernel_name", ["wk-py", "wk-py-msg"], ids=["signal", "message"])
def test_jupyter_client_lifecycle(kernel_name):
    """start, wait_for_ready, interrupt, restart, shutdown_kernel — with both interrupt modes."""
    km = KernelManager(kernel_name=kernel_name)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        expected_mode = "message" if kernel_name.endswith("-msg") else "signal"
        assert km.kernel_spec.interrupt_mode == expected_mode
        first_pid = km.provisioner.process.pid

        for _ in range(2):
            msg_id = kc.execute("time.sleep(30)")
            _wait_running(kc, msg_id)
            km.interrupt_kernel()
            reply = _reply(kc, msg_id)
            assert reply["content"]["status"] == "error"
            assert reply["content"]["ename"] == "KeyboardInterrupt"

        reply = kc.execute("6*7", reply=True, timeout=10)
        assert reply["content"]["status"] == "ok"

        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=30)
        assert km.provisioner.process.pid != first_pid
        reply = kc.execute("6*7", reply=True, timeout=10)
        assert reply["content"]["execution_count"] == 1  # a fresh kernel

        process = km.provisioner.process
        km.shutdown_kernel(now=False)
        assert not km.is_alive()
        # A clean exit (status 0), not the SIGTERM/SIGKILL jupyter_client falls back on.
        assert process.wait(timeout=10) == 0
    finally:
        kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)


def _notebook(kernel_name, cells):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel_name, "display_name": kernel_name, "language": ""}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    return nb


def test_nbclient_echo():
    from nbclient import NotebookClient

    nb = _notebook("wk-echo", ["hello", "world"])
    NotebookClient(nb, timeout=30, kernel_name="wk-echo").execute()
    assert [c.outputs[0]["text"] for c in nb.cells] == ["hello", "world"]
    assert [c.execution_count for c in nb.cells] == [1, 2]


@pytest.mark.parametrize("kernel_name", ["wk-plot", "wk-seed-plot"])
def test_nbclient_plot(kernel_name):
    from nbclient import NotebookClient

    nb = _notebook(kernel_name, ["y = sin(x)\ny = x**2 / 10"])
    NotebookClient(nb, timeout=60, kernel_name=kernel_name).execute()
    outputs = nb.cells[0].outputs
    streams = [o for o in outputs if o["output_type"] == "stream"]
    assert streams and streams[0]["text"].startswith("Plotting 2 function(s)")
    displays = [o for o in outputs if o["output_type"] == "display_data"]
    assert len(displays) == 1
    png = base64.b64decode(displays[0]["data"]["image/png"], validate=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_nbclient_plot_error_is_a_cell_error():
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = _notebook("wk-plot", ["y = sin(x", "y = x"])
    with pytest.raises(CellExecutionError, match="never closed"):
        NotebookClient(nb, timeout=60, kernel_name="wk-plot").execute()


async def test_kernel_mgmt_client(tmp_path):
    """Our own asyncio client and subprocess launcher against the echo kernel."""
    cmd = [sys.executable, "-m", "wrapper_kernel.examples.echo", "-f", "{connection_file}"]
    launcher = SubprocessKernelLauncher(cmd, cwd=str(tmp_path), interrupt_mode="message")
    info, manager = await launcher.launch()
    kc = KernelClient(info, manager=manager)
    try:
        ready = await kc.wait_for_ready(timeout=30)
        assert ready.content["implementation"] == "Echo"
        outputs = []
        reply = await kc.execute_interactive("hi there", output_hook=outputs.append, timeout=10)
        assert reply.content["status"] == "ok"
        assert [m.content["text"] for m in outputs if m.msg_type == "stream"] == ["hi there"]
        assert (await kc.interrupt()).content["status"] == "ok"
        assert (await kc.comm_info()).content["comms"] == {}
        assert (await kc.is_complete("x")).content["status"] == "unknown"
    finally:
        await kc.shutdown_or_terminate(timeout=10)
        await kc.close()
    assert manager.returncode == 0


async def test_kernel_mgmt_client_over_ipc(tmp_path):
    """The same over ipc:// sockets (kernel_mgmt's SubprocessIPCKernelLauncher)."""
    cmd = [sys.executable, "-m", "wrapper_kernel.examples.echo", "-f", "{connection_file}"]
    launcher = SubprocessIPCKernelLauncher(cmd, cwd=str(tmp_path))
    info, manager = await launcher.launch()
    assert info["transport"] == "ipc"
    kc = KernelClient(info, manager=manager)
    try:
        await kc.wait_for_ready(timeout=30)
        reply = await kc.execute_interactive("over ipc", output_hook=lambda m: None, timeout=10)
        assert reply.content["status"] == "ok"
    finally:
        await kc.shutdown_or_terminate(timeout=10)
        await kc.close()
    assert manager.returncode == 0


@pytest.mark.parametrize("mode", ["signal", "message"])
async def test_kernel_mgmt_client_interrupts(tmp_path, mode):
    """kernel_mgmt's client interrupts a blocking execute (SIGINT to the group, or a message)."""
    import asyncio

    from .conftest import KERNEL_ARGV

    cmd = [*KERNEL_ARGV["wk-py"], "-f", "{connection_file}"]
    launcher = SubprocessKernelLauncher(cmd, cwd=str(tmp_path), interrupt_mode=mode)
    info, manager = await launcher.launch()
    kc = KernelClient(info, manager=manager)
    try:
        await kc.wait_for_ready(timeout=30)
        started = asyncio.Event()

        def on_iopub(msg):
            if msg.msg_type == "execute_input":
                started.set()

        kc.add_handler(on_iopub, "iopub")
        fut = kc.execute("time.sleep(30)")
        await asyncio.wait_for(started.wait(), 10)
        await kc.interrupt()
        reply = await asyncio.wait_for(fut, 10)
        assert reply.content["ename"] == "KeyboardInterrupt"
        reply = await asyncio.wait_for(kc.execute("6*7"), 10)
        assert reply.content["status"] == "ok"
    finally:
        await kc.shutdown_or_terminate(timeout=10)
        await kc.close()
    assert manager.returncode == 0
