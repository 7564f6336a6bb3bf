"""The REPL base through the bash kernel (and the README's python3 -i kernel): streaming,
interrupts, a REPL that exits or is killed, timeouts, stdin, rich output, install.

Each test starts a real kernel process (which starts a real bash in a pty) and drives it over
real ZeroMQ sockets with the raw client of conftest.py. bash runs with a private HOME.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import RawKernel
from .repl_helpers import BASH_ENV, write_repl_kernelspecs

BASH = [sys.executable, "-m", "wrapper_kernel.examples.bash"]


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``kernel(argv=BASH, **env)`` starts a ready kernel with a private HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    started: list[RawKernel] = []

    def start(argv: list[str] = BASH, **env: str) -> RawKernel:
        k = RawKernel(argv, tmp_path, {**BASH_ENV, **env})
        started.append(k)
        k.wait_ready()
        return k

    yield start
    for k in started:
        k.close()


def streams(iopub: list[Any]) -> str:
    return "".join(m.content["text"] for m in iopub if m.msg_type == "stream")


def run(k: RawKernel, code: str, **content: Any) -> tuple[dict[str, Any], list[Any]]:
    reply, iopub = k.execute(code, **content)
    return reply.content, iopub


def wait_stream(k: RawKernel, msg: Any, text: str, timeout: float = 20.0) -> list[Any]:
    """IOPub messages of ``msg`` up to the stream that contains ``text``."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        got = k.recv("iopub", max(0.01, deadline - time.monotonic()))
        if got.parent_header.get("msg_id") != msg.msg_id:
            continue
        seen.append(got)
        if got.msg_type == "stream" and text in got.content["text"]:
            return seen


def bash_pid(k: RawKernel) -> int:
    reply, iopub = run(k, "echo $$")
    assert reply["status"] == "ok"
    return int(streams(iopub))


def pid_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie is gone for our purposes (its parent reaps it).
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.02)
    return False


# -- output -----------------------------------------------------------------------------------


def test_output_streams_while_the_command_runs(kernel, tmp_path):
    """The first line reaches the frontend before the command can print the second: the
    command waits for a file that the test creates only once it has seen line one."""
    k = kernel()
    go = tmp_path / "go"
    code = f"echo one; while [ ! -e {go} ]; do sleep 0.02; done; echo two"
    msg = k.send("shell", "execute_request", {"code": code, "silent": False})
    before = wait_stream(k, msg, "one")
    assert not any(m.msg_type == "stream" and "two" in m.content["text"] for m in before)
    go.touch()
    rest = k.iopub_until_idle(msg)
    assert "two" in streams(rest)
    assert k.reply("shell", msg).content["status"] == "ok"


def test_the_issue_loop_streams_each_line_as_it_comes(kernel):
    """``for i in 1 2 3; do echo $i; sleep 1; done``: three stream messages, in order, each
    before the next line is printed, and all before the reply (the first line's latency is
    printed, not asserted: timing on a shared machine is not a test)."""
    k = kernel()
    code = "for i in 1 2 3; do echo $i; sleep 1; done"
    t0 = time.monotonic()
    msg = k.send("shell", "execute_request", {"code": code, "silent": False})
    arrivals = []
    for m in k.iopub_until_idle(msg, timeout=30):
        if m.msg_type == "stream":
            arrivals.append((m.content["text"], time.monotonic() - t0))
    reply = k.reply("shell", msg)
    assert reply.content["status"] == "ok"
    assert [text for text, _ in arrivals] == ["1\n", "2\n", "3\n"]
    # bash sleeps 1 s between lines: one message per line means each was sent on arrival.
    assert arrivals[0][1] < arrivals[1][1] < arrivals[2][1]
    print(f"first line after {arrivals[0][1] * 1000:.0f} ms")


def test_multiline_cells_and_exit_status_errors(kernel):
    k = kernel()
    reply, iopub = run(k, "x=5\nif [ $x -gt 1 ]; then\n  echo big\nfi\necho $((x * 2))")
    assert reply["status"] == "ok"
    assert streams(iopub) == "big\n10\n"
    reply, iopub = run(k, "ls /no/such/dir")
    assert reply["status"] == "error" and reply["ename"] == "ExitStatus"
    assert "status 2" in reply["evalue"]
    assert "No such file or directory" in streams(iopub)
    assert [m.msg_type for m in iopub if m.msg_type == "error"] == ["error"]
    # Only the last command's status counts, as in a script.
    reply, _ = run(k, "false\ntrue")
    assert reply["status"] == "ok"
    assert reply["execution_count"] == 3


def test_exit_status_errors_can_be_turned_off(kernel):
    k = kernel(WRAPPER_KERNEL_BASH_STATUS_ERRORS="0")
    reply, _ = run(k, "false")
    assert reply["status"] == "ok"


def test_an_incomplete_cell_is_an_error_and_bash_is_back_at_its_prompt(kernel):
    k = kernel()
    reply, _ = run(k, "for i in 1 2; do")
    assert reply["status"] == "error" and reply["ename"] == "IncompleteInput"
    reply, iopub = run(k, "echo fine")
    assert reply["status"] == "ok" and streams(iopub) == "fine\n"


def test_partial_lines_and_pipes(kernel):
    """A line without newline is output too; SIGPIPE is the default again (``yes | head``
    ends), and the prompt after unterminated output is still found."""
    k = kernel()
    reply, iopub = run(k, "printf 'no newline'")
    assert reply["status"] == "ok" and streams(iopub) == "no newline"
    reply, iopub = run(k, "yes | head -2")
    assert reply["status"] == "ok" and streams(iopub) == "y\ny\n"


def test_display_helpers_show_images_and_html(kernel, tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
    (tmp_path / "x.png").write_bytes(png)
    tmpdir = tmp_path / "tmp"  # the helpers' temporary files: ours only
    tmpdir.mkdir()
    k = kernel(TMPDIR=str(tmpdir))
    reply, iopub = run(k, f"echo before; cat {tmp_path / 'x.png'} | display; echo after")
    assert reply["status"] == "ok"
    kinds = [m.msg_type for m in iopub if m.msg_type in ("stream", "display_data")]
    assert kinds == ["stream", "display_data", "stream"]
    shown = next(m for m in iopub if m.msg_type == "display_data").content["data"]
    import base64

    assert base64.b64decode(shown["image/png"]) == png
    reply, iopub = run(k, "echo '<b>hi</b>' | displayHTML")
    html = next(m for m in iopub if m.msg_type == "display_data").content["data"]
    assert html["text/html"] == "<b>hi</b>\n"
    reply, iopub = run(k, "echo 'not an image' | display")
    assert "not a PNG" in streams(iopub)
    # The helpers' temporary files are removed once shown.
    assert list(tmpdir.iterdir()) == []


# -- interrupts, exits, crashes, timeouts ---------------------------------------------------------


@pytest.mark.parametrize("how", ["signal", "message"])
def test_interrupt_sleep_then_echo_works_at_once(kernel, how):
    k = kernel()
    msg = k.send("shell", "execute_request", {"code": "echo started; sleep 30", "silent": False})
    wait_stream(k, msg, "started")
    if how == "signal":
        k.proc.send_signal(signal.SIGINT)
    else:
        k.reply("control", k.send("control", "interrupt_request"))
    # Within 20 s, so not by the sleep's own end (30 s).
    reply = k.reply("shell", msg, timeout=20)
    assert reply.content["status"] == "error"
    assert reply.content["ename"] == "KeyboardInterrupt"
    k.iopub_until_idle(msg)
    reply, iopub = run(k, "echo ok")
    assert reply["status"] == "ok" and streams(iopub) == "ok\n"
    assert k.proc.poll() is None


def test_interrupt_of_a_program_that_ignores_ctrl_c_restarts_bash(kernel):
    """A command that traps SIGINT cannot keep the cell hanging: after two Ctrl-C bash is
    killed and a new one started; the reply is still an interrupt error."""
    k = kernel()
    code = "trap '' INT; echo started; sleep 30"
    msg = k.send("shell", "execute_request", {"code": code, "silent": False})
    wait_stream(k, msg, "started")
    # `trap '' INT` in the interactive shell itself: the sleep inherits the ignored signal.
    k.reply("control", k.send("control", "interrupt_request"))
    reply = k.reply("shell", msg, timeout=30)
    assert reply.content["ename"] == "KeyboardInterrupt"
    out = streams(k.iopub_until_idle(msg))
    assert "restarted" in out
    reply, iopub = run(k, "echo back")
    assert reply["status"] == "ok" and streams(iopub) == "back\n"


def test_exit_in_a_cell_is_an_error_and_the_next_cell_works(kernel):
    k = kernel()
    run(k, "X=kept")
    reply, iopub = run(k, "exit 3")
    assert reply["status"] == "error" and reply["ename"] == "ReplRestarted"
    assert "exited with status 3" in reply["evalue"]
    assert any(m.msg_type == "error" for m in iopub)
    reply, iopub = run(k, 'echo "next [$X]"')
    assert reply["status"] == "ok" and streams(iopub) == "next []\n"  # a new bash


def test_bash_killed_while_idle(kernel):
    k = kernel()
    pid = bash_pid(k)
    os.kill(pid, signal.SIGKILL)
    assert pid_gone(pid)
    reply, _ = run(k, "echo not run")
    assert reply["status"] == "error" and reply["ename"] == "ReplRestarted"
    assert "killed by SIGKILL" in reply["evalue"] and "not run" in reply["evalue"]
    reply, iopub = run(k, "echo works")
    assert reply["status"] == "ok" and streams(iopub) == "works\n"
    assert bash_pid(k) != pid


def test_bash_killed_while_running_a_cell(kernel):
    k = kernel()
    pid = bash_pid(k)
    msg = k.send("shell", "execute_request", {"code": "echo started; sleep 30", "silent": False})
    wait_stream(k, msg, "started")
    os.kill(pid, signal.SIGKILL)
    reply = k.reply("shell", msg, timeout=20)
    assert reply.content["status"] == "error"
    assert "killed by SIGKILL while running this cell" in reply.content["evalue"]
    k.iopub_until_idle(msg)
    reply, iopub = run(k, "echo works")
    assert reply["status"] == "ok" and streams(iopub) == "works\n"
    assert k.proc.poll() is None


def test_cell_timeout_interrupts_a_long_cell(kernel):
    k = kernel(WRAPPER_KERNEL_CELL_TIMEOUT="1")
    reply, _ = run(k, "sleep 30")
    assert reply["status"] == "error" and reply["ename"] == "TimeoutError"
    assert "1 s" in reply["evalue"]
    reply, iopub = run(k, "echo after")
    assert reply["status"] == "ok" and streams(iopub) == "after\n"


def test_shutdown_ends_bash(kernel):
    k = kernel()
    pid = bash_pid(k)
    reply = k.reply("control", k.send("control", "shutdown_request", {"restart": False}))
    assert reply.content["status"] == "ok"
    assert k.proc.wait(timeout=20) == 0
    assert pid_gone(pid)


# -- stdin --------------------------------------------------------------------------------------


def test_read_asks_the_frontend_over_stdin(kernel):
    k = kernel()
    code = "read -p 'name? ' who; echo \"hello $who\""
    msg = k.send("shell", "execute_request", {"code": code, "silent": False, "allow_stdin": True})
    req = k.recv("stdin", timeout=20)
    assert req.msg_type == "input_request"
    assert req.content == {"prompt": "name? ", "password": False}
    k.session.send(k.sockets["stdin"], "input_reply", {"value": "Ann"}, parent=req)
    assert k.reply("shell", msg).content["status"] == "ok"
    assert streams(k.iopub_until_idle(msg)) == "hello Ann\n"


def test_a_program_reading_the_terminal_asks_too(kernel):
    """A child program (Python's input(), no readline) is asked for, not only bash's read."""
    k = kernel()
    code = f"{sys.executable} -c \"print(input('py? ')[::-1])\""
    msg = k.send("shell", "execute_request", {"code": code, "silent": False, "allow_stdin": True})
    req = k.recv("stdin", timeout=20)
    assert req.content["prompt"] == "py? "
    k.session.send(k.sockets["stdin"], "input_reply", {"value": "abc"}, parent=req)
    assert k.reply("shell", msg).content["status"] == "ok"
    assert streams(k.iopub_until_idle(msg)) == "cba\n"


def test_a_quiet_command_is_not_a_question(kernel):
    """``sleep`` prints nothing for a while: no input_request, the cell just finishes."""
    k = kernel()
    msg = k.send("shell", "execute_request", {"code": "sleep 1; echo done", "allow_stdin": True})
    assert k.reply("shell", msg, timeout=20).content["status"] == "ok"
    assert streams(k.iopub_until_idle(msg)) == "done\n"
    assert not k.sockets["stdin"].poll(0)


def test_without_allow_stdin_the_program_gets_end_of_file(kernel):
    k = kernel()
    reply, iopub = run(k, 'read x; echo "status $?"', allow_stdin=False)
    assert reply["status"] == "ok"
    out = streams(iopub)
    assert "does not accept input" in out and "status 1" in out


# -- completion, inspection, is_complete, install -----------------------------------------------


def test_completion_files_variables_and_commands(kernel, tmp_path):
    (tmp_path / "alpha_file.txt").write_text("")
    (tmp_path / "alpha_dir").mkdir()
    k = kernel()
    run(k, f"cd {tmp_path}")
    code = "cat alpha_"
    reply = k.reply("shell", k.send("shell", "complete_request", {"code": code, "cursor_pos": 10}))
    assert reply.content["matches"] == ["alpha_dir/", "alpha_file.txt"]
    assert (reply.content["cursor_start"], reply.content["cursor_end"]) == (4, 10)
    code = "echo ${WK_COMPLETE_A"
    msg = k.send("shell", "complete_request", {"code": code, "cursor_pos": len(code)})
    assert k.reply("shell", msg).content["matches"] == ["${WK_COMPLETE_ALPHA"]


def test_inspection_from_help_and_type(kernel):
    k = kernel()
    run(k, "greet() { echo hi; }")
    for code, expect in (("cd", "Change the shell working directory"), ("greet", "function")):
        msg = k.send("shell", "inspect_request", {"code": code, "cursor_pos": 1})
        content = k.reply("shell", msg).content
        assert content["found"] is True
        assert expect in content["data"]["text/plain"]
    msg = k.send("shell", "inspect_request", {"code": "no_such_thing_here", "cursor_pos": 2})
    assert k.reply("shell", msg).content["found"] is False


def test_install_writes_a_kernelspec(tmp_path):
    prefix = tmp_path / "prefix"
    out = subprocess.run(
        [*BASH, "install", "--prefix", str(prefix)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    spec = json.loads((prefix / "share/jupyter/kernels/wrapper-bash/kernel.json").read_text())
    assert spec["argv"][1:3] == ["-m", "wrapper_kernel.examples.bash"]
    assert spec["language"] == "bash" and spec["display_name"] == "Bash (wrapper_kernel)"


def test_kernel_info_is_honest(kernel):
    k = kernel()
    content = k.reply("shell", k.send("shell", "kernel_info_request")).content
    assert content["language_info"]["name"] == "bash"
    assert content["language_info"]["version"].split(".")[0].isdigit()
    assert content["supported_features"] == [] and content["debugger"] is False


# -- the README's python3 -i kernel --------------------------------------------------------------


def test_python_repl_kernel_streams_asks_and_recovers(kernel, tmp_path):
    argv = write_repl_kernelspecs(tmp_path)["wk-readme-pyrepl"]
    k = kernel(argv)
    reply, iopub = run(k, "def f(x):\n    return x * 2\n\nprint(f(21))")
    assert reply["status"] == "ok" and streams(iopub) == "42\n"
    reply, iopub = run(k, "1/0")
    assert reply["ename"] == "ZeroDivisionError" and not streams(iopub)
    msg = k.send("shell", "execute_request", {"code": "x = input('? ')", "allow_stdin": True})
    req = k.recv("stdin", timeout=20)
    assert req.content["prompt"] == "? "
    k.session.send(k.sockets["stdin"], "input_reply", {"value": "typed"}, parent=req)
    assert k.reply("shell", msg).content["status"] == "ok"
    k.iopub_until_idle(msg)
    reply, iopub = run(k, "print(x)")
    assert streams(iopub) == "typed\n"
    msg = k.send("shell", "execute_request", {"code": "import time; time.sleep(30)"})
    time.sleep(0.5)
    k.reply("control", k.send("control", "interrupt_request"))
    reply = k.reply("shell", msg, timeout=20)
    assert reply.content["ename"] == "KeyboardInterrupt"
    k.iopub_until_idle(msg)
    reply, iopub = run(k, "print('alive', x)")
    assert reply["status"] == "ok" and streams(iopub) == "alive typed\n"


def test_cell_timeout_covers_an_unanswered_question(kernel):
    """A frontend that never answers input_request does not hold the cell past its timeout."""
    k = kernel(WRAPPER_KERNEL_CELL_TIMEOUT="2")
    msg = k.send("shell", "execute_request", {"code": "read x", "allow_stdin": True})
    assert k.recv("stdin", timeout=20).msg_type == "input_request"  # and never answered
    reply = k.reply("shell", msg, timeout=30)
    assert reply.content["ename"] == "TimeoutError"
    k.iopub_until_idle(msg)
    reply, iopub = run(k, "echo after")
    assert reply["status"] == "ok" and streams(iopub) == "after\n"


def test_a_killed_kernel_takes_bash_with_it(kernel):
    k = kernel()
    pid = bash_pid(k)
    k.proc.kill()
    k.proc.wait(timeout=10)
    assert pid_gone(pid)  # the pty's master closed: bash got SIGHUP


def test_progress_bar_frames_stream_without_newlines(kernel, tmp_path):
    """Carriage-return frames are output as they come, though no line ever ends."""
    k = kernel()
    go = tmp_path / "go"
    code = f"printf 'step 1\\r'; while [ ! -e {go} ]; do sleep 0.02; done; printf 'step 2\\r'"
    msg = k.send("shell", "execute_request", {"code": code, "silent": False})
    wait_stream(k, msg, "step 1")
    go.touch()
    rest = streams(k.iopub_until_idle(msg))
    assert "step 2" in rest
    assert k.reply("shell", msg).content["status"] == "ok"


SQLITE_KERNEL = """
import sqlite3
from wrapper_kernel.repl import ReplKernel

class SqliteKernel(ReplKernel):
    implementation = "sqlite-repl"
    language = "sql"
    repl_command = ["sqlite3", "-interactive"]
    prompt_change = ".prompt '{ps1}' '{ps2}'"

    def do_is_complete(self, code):
        done = sqlite3.complete_statement(code)
        return {"status": "complete"} if done else {"status": "incomplete", "indent": ""}

if __name__ == "__main__":
    SqliteKernel.launch_instance()
"""


@pytest.mark.skipif(
    not shutil.which("sqlite3"), reason="the sqlite3 program is not installed (README's note)"
)
def test_readme_sqlite3_note(kernel, tmp_path):
    """The README's sqlite3 recipe works as written: multi-line statements, clean output."""
    script = tmp_path / "sqlitekernel.py"
    script.write_text(SQLITE_KERNEL)
    k = kernel([sys.executable, str(script)])
    run(k, "create table t(x);")
    reply, _ = run(k, "insert into t values (1),\n(2);")
    assert reply["status"] == "ok"
    reply, iopub = run(k, "select sum(x) from t;")
    assert streams(iopub) == "3\n"
    msg = k.send("shell", "is_complete_request", {"code": "select 1"})
    assert k.reply("shell", msg).content["status"] == "incomplete"
