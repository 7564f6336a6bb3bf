"""``kernel-mgmt run`` used as a person would: the console script in a subprocess / a pty."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pexpect
import psutil
import pytest

from kernel_mgmt.runner import split_cells

SCRIPT = shutil.which("kernel-mgmt", path=os.path.dirname(sys.executable)) or "kernel-mgmt"


@pytest.fixture
def env(tmp_path, monkeypatch):
    runtime = tmp_path / "runtime"
    e = dict(os.environ)
    e.update(
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_PATH=str(tmp_path / "path"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        KERNEL_MGMT_PROVIDERS="pyimport,spec",
        PYTHONUNBUFFERED="1",
    )
    monkeypatch.chdir(tmp_path)
    yield e
    left = list(runtime.glob("kernel-*.json")) if runtime.exists() else []
    assert not left, f"connection files left behind: {left}"
    # The kernel runs in its own session, so look for it by its runtime directory.
    stray = []
    for p in psutil.process_iter(["cmdline"]):
        with_runtime = any(str(runtime) in part for part in (p.info["cmdline"] or []))
        if with_runtime and p.pid != os.getpid():
            stray.append(p)
    assert not stray, f"kernel processes left behind: {stray}"


def run(env, *args, input=None, timeout=60):
    return subprocess.run(
        [SCRIPT, "run", "pyimport/kernel", *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_split_cells():
    code = "a = 1\n# %%\nb = 2\n# %% [markdown] title\n\n#%%\nc = 3\n"
    assert split_cells(code) == ["a = 1", "b = 2", "c = 3"]


def test_script_with_prints_streams_and_result(env, tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("import sys\nprint('hello')\nprint('oops', file=sys.stderr)\n6 * 7\n")
    p = run(env, str(script))
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hello\n42\n"
    assert "oops\n" in p.stderr


def test_error_exits_nonzero_and_stops(env):
    p = run(env, "--cells", "-c", "print('one')\n# %%\n1/0\n# %%\nprint('never')")
    assert p.returncode == 1
    assert "one" in p.stdout and "never" not in p.stdout
    assert "ZeroDivisionError" in p.stderr
    assert "\x1b[" not in p.stderr, "tracebacks written to a pipe must have no colour codes"


def test_code_from_stdin(env):
    p = run(env, "-", input="x = 20\nprint(x + 22)\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "42\n"


def test_plot_written_to_output_dir(env, tmp_path):
    script = tmp_path / "plot.py"
    script.write_text(
        "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.show()\n"
        "# %%\nfrom IPython.display import SVG, HTML, display\n"
        "display(HTML('<b>bold</b>'))\n"
    )
    p = run(env, "--cells", str(script), timeout=90)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "kernel-mgmt-output"
    pngs = list(out.glob("*.png"))
    assert len(pngs) == 1
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [h.read_text() for h in out.glob("*.html")] == ["<b>bold</b>"]
    assert f"saved to {os.path.join('kernel-mgmt-output', pngs[0].name)}" in p.stdout
    assert "written to" in p.stderr


def test_output_dir_option(env, tmp_path):
    code = "from IPython.display import SVG, display\ndisplay(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\"/>'))"
    p = run(env, "--output-dir", "figs", "-c", code)
    assert p.returncode == 0, p.stderr
    assert len(list((tmp_path / "figs").glob("*.svg"))) == 1


def test_json_lines(env):
    p = run(env, "--json", "-c", "print('hi')")
    assert p.returncode == 0, p.stderr
    records = [json.loads(line) for line in p.stdout.splitlines()]
    streams = [r for r in records if r["msg_type"] == "stream"]
    assert streams[0]["content"]["text"] == "hi\n"
    assert records[-1]["msg_type"] in ("execute_reply", "status")
    assert any(r["msg_type"] == "execute_reply" for r in records)


def test_timeout(env):
    t0 = time.monotonic()
    p = run(env, "--timeout", "0.5", "-c", "import time; time.sleep(30)")
    assert p.returncode == 124
    assert "0.5" in p.stderr
    assert time.monotonic() - t0 < 20


def test_unknown_kernel_type(env):
    p = subprocess.run(
        [SCRIPT, "run", "nope/kernel", "-c", "1"], env=env, capture_output=True, text=True
    )
    assert p.returncode == 2
    assert "nope" in p.stderr


def test_usage_errors_exit_2(env, tmp_path):
    both = run(env, "-c", "1", str(tmp_path / "x.py"))
    assert both.returncode == 2 and "not both" in both.stderr
    nothing = run(env)
    assert nothing.returncode == 2 and "give the code to run" in nothing.stderr
    missing = run(env, str(tmp_path / "missing.py"))
    assert missing.returncode == 2 and "missing.py" in missing.stderr
    no_type = subprocess.run([SCRIPT, "run"], env=env, capture_output=True, text=True)
    assert no_type.returncode == 2 and "TYPE" in no_type.stderr


def _spawn(env, *args):
    return pexpect.spawn(
        SCRIPT, ["run", "pyimport/kernel", *args], env=env, encoding="utf-8", timeout=30
    )


def test_input_from_terminal(env):
    child = _spawn(env, "-c", "name = input('name? ')\nprint('hello', name)")
    try:
        child.expect_exact("name? ")
        child.sendline("Grace")
        child.expect_exact("hello Grace")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_ctrl_c_interrupts_kernel(env):
    child = _spawn(env, "-c", "import time\nprint('sleeping', flush=True)\ntime.sleep(30)")
    try:
        child.expect_exact("sleeping")
        t0 = time.monotonic()
        child.sendintr()
        child.expect("KeyboardInterrupt")
        assert time.monotonic() - t0 < 3
        assert "\x1b[" in child.before, "a terminal gets the kernel's coloured traceback"
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 1


def test_second_ctrl_c_quits(env):
    code = (
        "import time\nwhile True:\n    try:\n        print('ready', flush=True)\n"
        "        time.sleep(30)\n    except KeyboardInterrupt:\n"
        "        print('ignored', flush=True)\n        time.sleep(30)\n"
    )
    child = _spawn(env, "-c", code)
    try:
        child.expect_exact("ready")
        child.sendintr()
        child.expect_exact("ignored")
        child.sendintr()
        child.expect_exact("quitting")
        child.expect(pexpect.EOF, timeout=15)
    finally:
        child.close()
    assert child.exitstatus == 130


def test_ctrl_c_during_shutdown_leaves_no_kernel(env, tmp_path):
    """A kernel slow to exit (an atexit hook) while the user presses Ctrl-C: the runner must
    still kill it and remove its files, not quit and leave it running."""
    marker = tmp_path / "exiting"
    code = (
        "import atexit, pathlib, time\n"
        f"atexit.register(lambda: (pathlib.Path({str(marker)!r}).touch(), time.sleep(30)))\n"
        "print('done', flush=True)"
    )
    child = _spawn(env, "-c", code)
    try:
        child.expect_exact("done")
        deadline = time.monotonic() + 20
        while not marker.exists():  # the kernel got shutdown_request and is in its atexit
            assert time.monotonic() < deadline, "kernel never started shutting down"
            time.sleep(0.02)
        t0 = time.monotonic()
        child.sendintr()
        child.expect(pexpect.EOF, timeout=15)
        assert time.monotonic() - t0 < 3, "Ctrl-C during shutdown should kill at once"
    finally:
        child.close()
    assert child.exitstatus == 130


def test_kernel_that_cannot_launch_gives_a_message_not_a_traceback(env, tmp_path):
    spec = tmp_path / "path" / "kernels" / "bad"
    spec.mkdir(parents=True)
    argv = [str(tmp_path / "no-such-python"), "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Bad", "language": "python"})
    )
    p = subprocess.run(
        [SCRIPT, "run", "spec/bad", "-c", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 1
    assert "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith("kernel-mgmt run: ") and "no-such-python" in p.stderr
