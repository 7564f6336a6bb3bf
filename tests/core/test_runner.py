"""``kernel-mgmt run`` used as a person would: the console script in a subprocess / a pty."""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import signal
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


def run(env, *args, input=None, timeout=60, kernel="pyimport/kernel", cwd=None):
    return subprocess.run(
        [SCRIPT, "run", kernel, *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def test_split_cells():
    code = "a = 1\n# %%\nb = 2\n# %% title\n\n#%%\nc = 3\n"
    assert split_cells(code) == ["a = 1", "b = 2", "c = 3"]


def test_split_cells_skips_markdown_cells():
    """Jupytext / VS Code percent format: `# %% [markdown]` and `# %% [md]` cells are text."""
    code = (
        "a = 1\n# %% [markdown]\n# Title\nSome *text*\n# %% Plot [md]\nnot code\n"
        "# %% Code title\nb = 2\n"
    )
    assert split_cells(code) == ["a = 1", "b = 2"]


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


def test_markdown_cells_are_not_run(env, tmp_path):
    script = tmp_path / "notes.py"
    script.write_text(
        "print('one')\n# %% [markdown]\nThis is *markdown*, not Python.\n"
        "# %% [md]\nprint('markdown ran')\n# %%\nprint('two')\n"
    )
    p = run(env, "--cells", str(script))
    assert p.returncode == 0, p.stderr
    assert p.stdout == "one\ntwo\n"


def test_timeout(env):
    """The cell is interrupted and its reply awaited before the kernel is shut down: exit 124,
    one clear message, the KeyboardInterrupt reply shown, and no ZMQError from a kernel torn
    down in the middle of sending it."""
    t0 = time.monotonic()
    p = run(env, "--timeout", "0.5", "-c", "import time; time.sleep(30)")
    assert p.returncode == 124
    assert "kernel-mgmt run: the cell ran longer than --timeout 0.5 s" in p.stderr
    assert "KeyboardInterrupt" in p.stderr, "the interrupted cell's reply was not awaited"
    assert "ZMQError" not in p.stderr and "Exception in message handler" not in p.stderr, p.stderr
    assert time.monotonic() - t0 < 20


def test_timeouts_must_be_positive(env):
    for option in ("--timeout", "--startup-timeout"):
        for value in ("-1", "0", "soon"):
            p = run(env, option, value, "-c", "1")
            assert p.returncode == 2, (option, value, p.stderr)
            assert f"argument {option}: must be a number of seconds > 0" in p.stderr


def test_startup_timeout_message_is_readable(env):
    p = run(env, "--startup-timeout", "0.05", "-c", "1")
    assert p.returncode == 1
    assert "not ready within 0.05 s (--startup-timeout" in p.stderr, p.stderr
    assert not re.search(r"\d\.\d{4,}", p.stderr), p.stderr
    assert "Traceback" not in p.stderr


def test_missing_cwd_is_a_usage_error(env, tmp_path):
    p = run(env, "--cwd", str(tmp_path / "nonexistent"), "-c", "1")
    assert p.returncode == 2
    assert p.stderr == f"kernel-mgmt run: --cwd {tmp_path / 'nonexistent'}: no such folder\n"
    (tmp_path / "a-file").write_text("")
    p = run(env, "--cwd", str(tmp_path / "a-file"), "-c", "1")
    assert p.returncode == 2 and "not a folder" in p.stderr


def test_output_dir_that_is_a_file_fails_before_the_kernel_starts(env, tmp_path):
    (tmp_path / "taken").write_text("")
    for folder in ("taken", os.path.join("taken", "sub")):
        t0 = time.monotonic()
        p = run(env, "--output-dir", folder, "-c", "print('ran')")
        assert p.returncode == 2
        assert "ran" not in p.stdout
        assert f"cannot write rich outputs to folder {tmp_path / folder}" in p.stderr
        assert "not a folder" in p.stderr
        assert time.monotonic() - t0 < 5


#: A 1x1 PNG image.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_default_output_dir_is_not_needed_until_a_rich_output_comes(env, tmp_path):
    """The default folder is made on first use: a run without rich outputs works where it
    cannot be made (as in a folder the user cannot write to; here its name is a file, so it
    fails for root too); a rich output then fails there with one message and exit 1."""
    cwd = tmp_path / "read-only"
    cwd.mkdir()
    (cwd / "kernel-mgmt-output").write_text("")
    p = run(env, "-c", "print(1)", cwd=cwd)
    assert (p.returncode, p.stdout) == (0, "1\n"), p.stderr
    assert "kernel-mgmt run:" not in p.stderr
    show_png = f"from IPython.display import Image, display\ndisplay(Image(data={PNG!r}))"
    p = run(env, "-c", show_png, cwd=cwd)
    assert p.returncode == 1, p.stderr
    assert p.stdout == "[image not saved]\n"
    messages = [line for line in p.stderr.splitlines() if line.startswith("kernel-mgmt run:")]
    assert messages == [
        f"kernel-mgmt run: cannot write rich outputs to folder {cwd / 'kernel-mgmt-output'}: "
        "cannot create it: File exists (choose another with --output-dir DIR); "
        "stopping after this cell"
    ]
    assert "Traceback" not in p.stderr


PLOTS = (
    "from IPython.display import HTML, display\n"
    "display(HTML('<b>one</b>'))\ndisplay(HTML('<b>two</b>'))\n# %%\nprint('never')\n"
)


def test_default_output_dir_failing_mid_run_is_one_error_and_exit_1(env, tmp_path):
    """Found only when the first rich output comes (the default folder's name is taken by a
    file): one message naming the folder, each lost output marked, the run stops, exit 1."""
    (tmp_path / "kernel-mgmt-output").write_text("")
    p = run(env, "--cells", "-c", PLOTS)
    assert p.returncode == 1
    assert p.stdout == "[HTML not saved]\n[HTML not saved]\n"
    messages = [line for line in p.stderr.splitlines() if line.startswith("kernel-mgmt run:")]
    assert len(messages) == 1, p.stderr
    folder = tmp_path / "kernel-mgmt-output"
    assert f"cannot write rich outputs to folder {folder}: cannot create it" in messages[0]
    assert "Traceback" not in p.stderr and "message handler" not in p.stderr


@pytest.mark.parametrize("folder", ["/proc/nope", "x" * 300])
def test_output_dir_that_cannot_be_made_fails_before_the_kernel_starts(env, tmp_path, folder):
    """An explicit --output-dir is made up front, so a folder that passes an access check but
    cannot be made (/proc/nope, even as root; a name too long) is a usage error, exit 2,
    before any kernel starts (the fixture checks none was left)."""
    t0 = time.monotonic()
    p = run(env, "--cells", "--output-dir", folder, "-c", "print('ran')\n" + PLOTS)
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    assert re.fullmatch(
        "kernel-mgmt run: cannot write rich outputs to folder "
        + re.escape(os.path.abspath(tmp_path / folder))
        + r": cannot create it: [^\n]+ \(choose another with --output-dir DIR\)\n",
        p.stderr,
    ), p.stderr
    assert time.monotonic() - t0 < 5


def test_explicit_output_dir_is_made_up_front(env, tmp_path):
    p = run(env, "--output-dir", os.path.join("new", "figs"), "-c", "print('ran')")
    assert (p.returncode, p.stdout) == (0, "ran\n"), p.stderr
    assert (tmp_path / "new" / "figs").is_dir()


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_code_that_is_not_utf8_is_a_usage_error(env, tmp_path, how):
    """One line naming the file (or stdin) and the first bad byte's offset, exit 2, before
    any kernel starts."""
    data = b"print(1)\n\xff\xfeprint(2)\n"
    script = tmp_path / "b.py"
    script.write_bytes(data)
    t0 = time.monotonic()
    p = subprocess.run(
        [SCRIPT, "run", "pyimport/kernel", str(script) if how == "file" else "-"],
        env=env,
        input=data,
        capture_output=True,
        timeout=60,
    )
    assert p.returncode == 2, p.stderr
    assert p.stdout == b""
    source = str(script) if how == "file" else "stdin"
    assert p.stderr.decode().startswith(
        f"kernel-mgmt run: {source}: not UTF-8 text (byte 0xff at byte offset 9)"
    )
    assert p.stderr.count(b"\n") == 1, p.stderr
    assert time.monotonic() - t0 < 5


def test_notes_start_on_a_new_line(env):
    code = (
        "from IPython.display import HTML, display\n"
        "print('Plotting 2 function(s)', end='')\ndisplay(HTML('<b>x</b>'))\n"
        "print('partial', end='')\n"
    )
    p = run(env, "-c", code)
    assert p.returncode == 0, p.stderr
    saved = os.path.join("kernel-mgmt-output", "output-1.html")
    assert p.stdout == f"Plotting 2 function(s)\n[HTML saved to {saved}]\npartial\n"
    p = run(env, "-c", "import sys\nsys.stdout.write('echo me')")  # then the result, 7
    assert p.stdout == "echo me\n7\n"


def test_unknown_kernel_type(env):
    p = run(env, "-c", "1", kernel="nope/kernel")
    assert p.returncode == 2
    assert "nope" in p.stderr
    assert "hint: KERNEL_MGMT_PROVIDERS='pyimport,spec' limits which providers load" in p.stderr
    p = run(env, "-c", "1", kernel="pyimport/nope")  # its provider is loaded: no such hint
    assert p.returncode == 2
    assert "no kernel type 'pyimport/nope'" in p.stderr and "hint" not in p.stderr


def test_unknown_type_names_providers_not_installed(env):
    env = {**env, "KERNEL_MGMT_PROVIDERS": "spec,nosuch"}
    p = run(env, "-c", "1", kernel="nosuch/kernel")
    assert p.returncode == 2
    assert "KERNEL_MGMT_PROVIDERS='spec,nosuch' names provider(s) not installed: nosuch" in (
        p.stderr
    )


def test_bad_config_is_a_usage_error(env, tmp_path):
    """As `kernel-mgmt list` (exit 2, the file and key named), before any kernel starts."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[providers]\ntimeout = 'x'\n")
    p = run({**env, "KERNEL_MGMT_CONFIG": str(bad)}, "-c", "print('ran')")
    assert p.returncode == 2
    assert str(bad) in p.stderr and "providers.timeout" in p.stderr
    assert "ran" not in p.stdout and "Traceback" not in p.stderr


def test_provider_launch_error_names_provider_and_exception(env, tmp_path):
    """A provider whose launch hook raises: its id and the exception type are in the message."""
    site = tmp_path / "site"
    info = site / "km_oblong-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: km-oblong\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[kernel_mgmt]\noblong = km_oblong\n")
    (site / "km_oblong.py").write_text(
        "from kernel_mgmt.hookspecs import hookimpl\n"
        "@hookimpl\n"
        "def find_kernels():\n"
        "    yield 'standard', {'display_name': 'Oblong', 'language': 'python'}\n"
        "@hookimpl\n"
        "def launch(name, cwd, launch_params):\n"
        "    return my_launch_method(name)\n"
    )
    env = {**env, "PYTHONPATH": str(site), "KERNEL_MGMT_PROVIDERS": "oblong"}
    p = run(env, "-c", "1", kernel="oblong/standard")
    assert p.returncode == 1
    assert p.stderr == (
        "kernel-mgmt run: cannot start oblong/standard: provider 'oblong' raised NameError: "
        "name 'my_launch_method' is not defined\n"
    )


def test_usage_errors_exit_2(env, tmp_path):
    both = run(env, "-c", "1", str(tmp_path / "x.py"))
    assert both.returncode == 2 and "not both" in both.stderr
    nothing = run(env)
    assert nothing.returncode == 2 and "give the code to run" in nothing.stderr
    missing = run(env, str(tmp_path / "missing.py"))
    assert missing.returncode == 2 and "missing.py" in missing.stderr
    no_type = subprocess.run([SCRIPT, "run"], env=env, capture_output=True, text=True, timeout=60)
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
    assert child.exitstatus == 130, "a Ctrl-C'd run exits 128 + SIGINT, not 1 as a code error"


def test_ctrl_c_stops_the_run_even_if_the_cell_catches_it(env):
    """SIGINT sent to the CLI process (as a shell's kill -INT): the cell that swallows the
    KeyboardInterrupt finishes, the next cells do not run, exit 130."""
    code = (
        "import time\ntry:\n    print('sleeping', flush=True)\n    time.sleep(30)\n"
        "except KeyboardInterrupt:\n    print('caught', flush=True)\n# %%\nprint('next cell')\n"
    )
    proc = subprocess.Popen(
        [SCRIPT, "run", "pyimport/kernel", "--cells", "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert select.select([proc.stdout], [], [], 30)[0], "the cell never printed"
        assert proc.stdout.readline() == "sleeping\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert out == "caught\n"
    assert "interrupting the kernel" in err


def test_partial_last_line_is_ended_on_a_terminal(env):
    """On a terminal, a run whose output has no final newline still ends the line."""
    child = _spawn(env, "-c", "print('echo me', end='')")
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert child.before.endswith("echo me\r\n")


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
    p = run(env, "-c", "1", kernel="spec/bad")
    assert p.returncode == 1
    assert "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith("kernel-mgmt run: ") and "no-such-python" in p.stderr


def test_kernel_that_dies_at_start_up_is_reported_once(env, tmp_path):
    """The message names the kernel type once, its exit code and its last stderr lines."""
    spec = tmp_path / "path" / "kernels" / "die"
    spec.mkdir(parents=True)
    code = (
        "import sys; print('first', file=sys.stderr); print('boom', file=sys.stderr); sys.exit(3)"
    )
    (spec / "kernel.json").write_text(
        json.dumps(
            {"argv": [sys.executable, "-c", code], "display_name": "Die", "language": "python"}
        )
    )
    p = run(env, "-c", "1", kernel="spec/die")
    assert p.returncode == 1
    message = p.stderr[p.stderr.index("kernel-mgmt run:") :]
    assert re.fullmatch(
        r"kernel-mgmt run: the kernel failed to start: kernel spec/die \(id [0-9a-f-]+\) died: "
        r"exit code 3\. Last lines of its stderr:\n(.*\n)*boom\n",
        message,
    ), p.stderr
    assert message.count("spec/die") == 1


def test_start_up_death_message_names_the_type_once():
    from kernel_mgmt.client_base import KernelDied
    from kernel_mgmt.runner import _startup_death

    err = KernelDied("kernel spec/die (id 1) died: exit code 3", returncode=3)
    assert _startup_death("spec/die", err) == (
        "the kernel failed to start: kernel spec/die (id 1) died: exit code 3"
    )
    assert _startup_death("spec/die", KernelDied("the kernel died")) == (
        "spec/die: the kernel failed to start: the kernel died"
    )


def test_exit_in_a_cell_ends_the_run(env):
    """IPython's exit() (an ask_exit payload in the execute_reply) is a normal end: the next
    cells do not run, exit 0, and the kernel is shut down as usual (the fixture checks)."""
    code = "print('one')\n# %%\nexit()\n# %%\nprint('never')"
    p = run(env, "--cells", "-c", code)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "one\n"
    assert "kernel-mgmt run:" not in p.stderr and "Traceback" not in p.stderr, p.stderr


@pytest.mark.parametrize("json_mode", [False, True], ids=["text", "json"])
def test_reader_gone_stops_the_run_quietly(env, tmp_path, json_mode):
    """``kernel-mgmt run ... | head``: when stdout's reader goes away the run stops without a
    traceback, the kernel is shut down and its connection file removed, and the exit status
    is 141 (128 + SIGPIPE), as a shell reports a program SIGPIPE ended."""
    code = (
        "import os, time\nprint(os.getpid(), flush=True)\n"
        "for i in range(1000000):\n    print(i, flush=True)\n    time.sleep(0.001)"
    )
    args = [SCRIPT, "run", "pyimport/kernel", *(["--json"] if json_mode else []), "-c", code]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert select.select([proc.stdout], [], [], 60)[0], "the cell never printed"
        line = proc.stdout.readline()
        if json_mode:  # the kernel_started, status and execute_input lines come first
            for _ in range(50):
                record = json.loads(line)
                if record["msg_type"] == "stream":
                    break
                line = proc.stdout.readline()
            line = record["content"]["text"].split()[0]
        pid = int(line)
        kernel = psutil.Process(pid)
        proc.stdout.close()  # the reader goes away, as head does after its lines
        err = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert kernel.wait(timeout=30) is not None or not kernel.is_running()
    assert not list((tmp_path / "runtime").glob("kernel-*.json"))


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_quit_signal_shuts_the_kernel_down(env, tmp_path, signum, status):
    """SIGTERM (kill, timeout) or SIGHUP (terminal closed) to the CLI while a cell runs: the
    kernel is shut down, its connection file removed, exit 128 + the signal number."""
    code = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(30)\n# %%\nprint('never')"
    proc = subprocess.Popen(
        [SCRIPT, "run", "pyimport/kernel", "--cells", "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # The runner leaves an inherited SIG_IGN alone (nohup); under nohup, undo it here.
        preexec_fn=lambda: signal.signal(signum, signal.SIG_DFL),
    )
    try:
        assert select.select([proc.stdout], [], [], 30)[0], "the cell never printed"
        kernel = psutil.Process(int(proc.stdout.readline()))
        assert list((tmp_path / "runtime").glob("kernel-*.json")), "no connection file?"
        t0 = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == status, err
    assert out == ""
    assert f"{signal.Signals(signum).name} received; shutting the kernel down" in err
    assert not kernel.is_running() or kernel.status() == psutil.STATUS_ZOMBIE
    assert not list((tmp_path / "runtime").glob("kernel-*.json"))
