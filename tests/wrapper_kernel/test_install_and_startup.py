"""The install command, start-up weight, launch_instance forms and the README's example."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

from .conftest import KERNELS, RawKernel

README = Path(__file__).parents[2] / "packages" / "wrapper-kernel" / "README.md"


@pytest.fixture
def jupyter_env(tmp_path, monkeypatch):
    """Private Jupyter dirs for this test (the installer must never touch the real ones)."""
    env = {
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_PATH": str(tmp_path / "path"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return tmp_path


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


def test_install_user_then_start_with_jupyter_client(jupyter_env):
    r = run([sys.executable, "-m", "wrapper_kernel.examples.echo", "install", "--user"])
    assert r.returncode == 0, r.stderr
    spec_dir = jupyter_env / "data" / "kernels" / "echo"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["argv"] == [
        sys.executable,
        "-m",
        "wrapper_kernel.examples.echo",
        "-f",
        "{connection_file}",
    ]
    assert spec["display_name"] == "Echo"
    assert spec["language"] == "no-op"
    assert spec["interrupt_mode"] == "signal"
    assert "env" not in spec, "an installed module needs no PYTHONPATH"
    assert "PYTHONPATH" not in r.stdout
    assert str(spec_dir) in r.stdout

    km = KernelManager(kernel_name="echo")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        assert kc.execute("hi", reply=True, timeout=10)["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel()


def test_install_prefix_and_name(jupyter_env):
    prefix = jupyter_env / "prefix"
    r = run(
        [
            sys.executable,
            "-m",
            "wrapper_kernel.examples.plot",
            "install",
            "--prefix",
            str(prefix),
            "--name",
            "my-plot",
            "--display-name",
            "My Plot",
        ]
    )
    assert r.returncode == 0, r.stderr
    spec = json.loads((prefix / "share/jupyter/kernels/my-plot/kernel.json").read_text())
    assert spec["display_name"] == "My Plot"
    assert spec["argv"][1:3] == ["-m", "wrapper_kernel.examples.plot"]


def test_install_sys_prefix(jupyter_env, monkeypatch):
    from wrapper_kernel.examples.echo import EchoKernel
    from wrapper_kernel.install import main

    monkeypatch.setattr(sys, "prefix", str(jupyter_env / "env"))
    assert main(EchoKernel, ["--sys-prefix", "--name", "echo-env"]) == 0
    spec_file = jupyter_env / "env/share/jupyter/kernels/echo-env/kernel.json"
    # Installed from inside another program (here pytest): argv still starts the kernel's
    # own module, not the program that happened to call install.
    assert json.loads(spec_file.read_text())["argv"] == [
        sys.executable,
        "-m",
        "wrapper_kernel.examples.echo",
        "-f",
        "{connection_file}",
    ]


def test_install_seed_script_uses_its_path(jupyter_env):
    prefix = jupyter_env / "p"
    script = KERNELS / "seed_echo.py"
    r = run([sys.executable, str(script), "install", "--prefix", str(prefix), "--name", "seed"])
    assert r.returncode == 0, r.stderr
    spec = json.loads((prefix / "share/jupyter/kernels/seed/kernel.json").read_text())
    assert spec["argv"] == [sys.executable, str(script), "-f", "{connection_file}"]
    assert spec["display_name"] == "Echo"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus"], "unknown option"),
        (["--user", "--prefix", "/x"], "one of --user"),
        (["--sys-prefix", "--prefix", "/x"], "one of --user"),
        (["--user", "--sys-prefix"], "one of --user"),
        (["--user", "--name", "Bad Name!"], "invalid kernel name"),
        (["--prefix"], "needs a value"),
        (["--prefix="], "needs a value"),
    ],
)
def test_install_errors_are_clear(jupyter_env, args, message):
    # Paths in the cases are relative to this test's tmp dir: a regression installs there.
    args = [str(jupyter_env / a[1:]) if a.startswith("/") else a for a in args]
    r = run([sys.executable, "-m", "wrapper_kernel.examples.echo", "install", *args])
    assert r.returncode != 0
    assert message in r.stderr


def test_bad_connection_file_is_a_clear_error(tmp_path):
    r = run([sys.executable, "-m", "wrapper_kernel.examples.echo", "-f", str(tmp_path / "no")])
    assert r.returncode == 1
    assert "EchoKernel" in r.stderr and "does not exist" in r.stderr
    assert "Traceback" not in r.stderr


def test_port_in_use_is_a_clear_error(tmp_path):
    import socket

    from kernel_mgmt.connection import write_connection_file

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        path, _ = write_connection_file(str(tmp_path / "k.json"), shell_port=s.getsockname()[1])
        r = run([sys.executable, "-m", "wrapper_kernel.examples.echo", "-f", path])
    assert r.returncode == 1
    assert "cannot listen on the shell channel" in r.stderr


def test_zero_ports_are_picked_and_written_back(tmp_path):
    """Port 0 in the connection file: the kernel binds free ports and records them."""
    path = tmp_path / "k.json"
    key = "a" * 64
    info = {"ip": "127.0.0.1", "transport": "tcp", "key": key, "signature_scheme": "hmac-sha256"}
    info.update({f"{c}_port": 0 for c in ("shell", "iopub", "stdin", "control", "hb")})
    path.write_text(json.dumps(info))
    proc = subprocess.Popen([sys.executable, "-m", "wrapper_kernel.examples.echo", "-f", str(path)])
    try:
        import time

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            written = json.loads(path.read_text() or "{}")
            if written.get("shell_port"):
                break
            time.sleep(0.02)
        assert all(written[f"{c}_port"] for c in ("shell", "iopub", "stdin", "control", "hb"))
        assert written["key"] == key
        assert os.stat(path).st_mode & 0o777 == 0o600
    finally:
        proc.kill()
        proc.wait(10)


STARTUP_PROBE = """
import sys
from wrapper_kernel import Kernel

class Probe(Kernel):
    implementation = "probe"

    def do_execute(self, code, silent, store_history=True, user_expressions=None,
                   allow_stdin=False):
        self.send_stream(" ".join(sorted(sys.modules)))
        return {"status": "ok", "execution_count": self.execution_count}

if __name__ == "__main__":
    Probe.launch_instance()
"""


def test_startup_imports_are_light(tmp_path):
    """A running kernel has not imported IPython, jsonschema, pluggy, asyncio or logging."""
    script = tmp_path / "probe.py"
    script.write_text(STARTUP_PROBE)
    k = RawKernel([sys.executable, str(script)], tmp_path)
    try:
        k.wait_ready()
        _, iopub = k.execute("")
        modules = set(next(m for m in iopub if m.msg_type == "stream").content["text"].split())
    finally:
        k.close()
    assert "zmq" in modules and "kernel_mgmt.protocol" in modules
    heavy = {
        "IPython",
        "ipykernel",
        "jsonschema",
        "pluggy",
        "asyncio",
        "logging",
        "argparse",
        "traitlets",
        "tornado",
        "platformdirs",
        "kernel_mgmt.discovery",
        "kernel_mgmt.client",
        "zmq.asyncio",
    }
    assert not heavy & modules


def readme_example() -> str:
    m = re.search(r"<!-- readme-example: echo -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert m, "README example block not found"
    return m.group(1)


def readme_commands(marker: str) -> list[list[str]]:
    """The command lines of the README block after ``<!-- readme-commands: marker -->``."""
    m = re.search(rf"<!-- readme-commands: {marker} -->\n```\n(.*?)```", README.read_text(), re.S)
    assert m, f"README has no command block {marker!r}"
    return [shlex.split(line, comments=True) for line in m.group(1).splitlines() if line.strip()]


def test_readme_example_runs(tmp_path):
    """The README's kernel example, extracted and run as a kernel."""
    script = tmp_path / "mykernel.py"
    script.write_text(readme_example())
    k = RawKernel([sys.executable, str(script)], tmp_path)
    try:
        k.wait_ready()
        reply, iopub = k.execute("parrot")
        assert reply.content == {
            "status": "ok",
            "execution_count": 1,
            "payload": [],
            "user_expressions": {},
        }
        assert [m.content["text"] for m in iopub if m.msg_type == "stream"] == ["parrot"]
    finally:
        k.close()


def run_with_jupyter_client(kernel_name: str, cwd: Path, code: str) -> tuple[str, Any]:
    """Start kernelspec ``kernel_name`` with jupyter_client in ``cwd`` (what ``jupyter
    console --kernel NAME`` does), run ``code``; return its stdout and the kernelspec."""
    km = KernelManager(kernel_name=kernel_name)
    km.start_kernel(cwd=str(cwd))
    kc = km.client()
    kc.start_channels()
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    try:
        kc.wait_for_ready(timeout=30)
        reply = kc.execute_interactive(code, output_hook=hook, timeout=30)
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return "".join(out), km.kernel_spec


def test_readme_guide_commands_work(jupyter_env):
    """Every command of the README's "install it and use it" guide, run as written: the
    example saved as mykernel.py, `python -m mykernel install ...` in its folder, then the
    kernel used from another folder (kernel-mgmt run; jupyter console's launch through
    jupyter_client, since jupyter-console is not a test dependency)."""
    src, elsewhere = jupyter_env / "src", jupyter_env / "elsewhere"
    src.mkdir()
    elsewhere.mkdir()
    (src / "mykernel.py").write_text(readme_example())
    env = dict(os.environ, KERNEL_MGMT_PROVIDERS="spec")
    ran = []
    for marker in ("install", "install-named"):
        for argv in readme_commands(marker):
            ran.append(argv[:2])
            if argv[:3] == ["python", "-m", "mykernel"]:
                r = run([sys.executable, *argv[1:]], cwd=src)
                assert r.returncode == 0, r.stderr
                name = argv[argv.index("--name") + 1] if "--name" in argv else "mykernel"
                assert f"Installed kernelspec {name} in " in r.stdout
                assert "PYTHONPATH" in r.stdout  # the note: mykernel.py is not installed
            elif argv[0] == "kernel-mgmt":
                assert argv[:3] == ["kernel-mgmt", "run", "spec/mykernel"]
                exe = str(Path(sys.executable).with_name("kernel-mgmt"))
                r = run([exe, *argv[1:]], cwd=elsewhere, env=env)
                assert r.returncode == 0, r.stderr
                assert r.stdout == "hello\n"
            elif argv[:2] == ["jupyter", "console"]:
                name = argv[argv.index("--kernel") + 1]
                out, spec = run_with_jupyter_client(name, elsewhere, "squawk")
                assert out == "squawk"
                if name == "my-echo":
                    assert spec.display_name == "My Echo"
            else:
                pytest.fail(f"the README guide has a command this test does not check: {argv}")
    assert len(ran) == 5, ran
    assert not list(elsewhere.iterdir()), "the kernels left files behind"


PATH_KERNEL = """
import os
from wrapper_kernel import Kernel

class PathKernel(Kernel):
    implementation = "pathkernel"

    def do_execute(self, code, silent, store_history=True, user_expressions=None,
                   allow_stdin=False):
        self.print(os.environ.get("PYTHONPATH", ""))
        return {"status": "ok", "execution_count": self.execution_count}

if __name__ == "__main__":
    PathKernel.launch_instance()
"""


def test_install_of_a_module_in_the_current_folder_sets_pythonpath(jupyter_env, monkeypatch):
    """`python -m pathkernel install` beside pathkernel.py: the module is importable only
    from that folder, so the kernelspec puts the folder on PYTHONPATH (keeping the launching
    environment's), says so, and the kernel starts from another folder with jupyter_client
    and with `kernel-mgmt run`."""
    src, elsewhere, prefix = (jupyter_env / d for d in ("src", "elsewhere", "prefix"))
    src.mkdir()
    elsewhere.mkdir()
    (src / "pathkernel.py").write_text(PATH_KERNEL)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    r = run([sys.executable, "-m", "pathkernel", "install", "--prefix", str(prefix)], cwd=src)
    assert r.returncode == 0, r.stderr
    assert f"only in {src}" in r.stdout and "PYTHONPATH" in r.stdout
    kernels = prefix / "share" / "jupyter" / "kernels"
    spec = json.loads((kernels / "pathkernel" / "kernel.json").read_text())
    assert spec["argv"][1:3] == ["-m", "pathkernel"]
    assert spec["env"] == {"PYTHONPATH": f"{src}{os.pathsep}${{PYTHONPATH}}"}

    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    monkeypatch.setenv("PYTHONPATH", "/opt/frontend-libs")
    out, _ = run_with_jupyter_client("pathkernel", elsewhere, "x")
    assert out == f"{src}{os.pathsep}/opt/frontend-libs\n"

    monkeypatch.delenv("PYTHONPATH")
    exe = str(Path(sys.executable).with_name("kernel-mgmt"))
    env = dict(os.environ, KERNEL_MGMT_PROVIDERS="spec")
    r = run([exe, "run", "spec/pathkernel", "-c", "x"], cwd=elsewhere, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(str(src) + os.pathsep)  # then the literal ${PYTHONPATH}


def test_install_of_an_importable_module_adds_no_pythonpath(jupyter_env):
    """From a folder that also holds it, a module this Python imports anyway (here via the
    editable install's path) gets no PYTHONPATH: local_module_folder finds it elsewhere."""
    from wrapper_kernel.examples.echo import EchoKernel
    from wrapper_kernel.install import kernel_spec, local_module_folder

    assert local_module_folder("wrapper_kernel.examples.echo") is None
    assert local_module_folder("json") is None
    assert local_module_folder("no_such_module_here") is None
    assert "env" not in kernel_spec(EchoKernel, module="wrapper_kernel.examples.echo")


def test_launch_instance_forms(tmp_path):
    """Kernel.launch_instance(), KernelApp/IPKernelApp.launch_instance(kernel_class=...)."""
    import wrapper_kernel
    from wrapper_kernel.kernelapp import IPKernelApp, KernelApp

    assert IPKernelApp is KernelApp is wrapper_kernel.KernelApp
    with pytest.raises(TypeError, match=r"subclass of wrapper_kernel\.Kernel"):
        KernelApp(kernel_class=dict)  # type: ignore[arg-type]
    r = run([sys.executable, "-m", "wrapper_kernel.examples.echo", "--help"])
    assert r.returncode == 0 and "install" in r.stdout


def test_plot_example_imports_numpy_lazily():
    code = (
        "import sys, wrapper_kernel.examples.plot\n"
        "print('numpy' in sys.modules, 'matplotlib' in sys.modules)"
    )
    r = run([sys.executable, "-c", code])
    assert r.stdout.split() == ["False", "False"], r.stderr


def test_plot_example_without_numpy_says_what_to_install(monkeypatch):
    from wrapper_kernel.examples import plot

    monkeypatch.setitem(sys.modules, "numpy", None)  # `import numpy` now raises ImportError
    with pytest.raises(plot.PlotDependencyError, match=r"pip install 'wrapper-kernel\[plot\]'"):
        plot._numpy()


def test_failed_bind_releases_its_resources():
    """A KernelServer that cannot listen closes what it opened (pipes, sockets, context)."""
    import socket
    import tempfile

    from kernel_mgmt.connection import write_connection_file
    from wrapper_kernel.server import KernelServer, KernelStartupError

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    with socket.socket() as s, tempfile.TemporaryDirectory() as tmp:
        s.bind(("127.0.0.1", 0))
        s.listen()
        path, info = write_connection_file(
            os.path.join(tmp, "k.json"), control_port=s.getsockname()[1]
        )
        before = None
        for _ in range(4):
            with pytest.raises(KernelStartupError, match="control channel"):
                KernelServer(dict(info), path)
            before = before or open_fds()  # after the first try: zmq's one-time fds exist
        assert open_fds() == before


def _imported_modules(importtime_log: str) -> set[str]:
    """Module names from ``python -X importtime`` output (``import time: self | cum | name``)."""
    names = set()
    for line in importtime_log.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # the header line
                names.add(name)
    return names


@pytest.mark.parametrize("module", ["wrapper_kernel.examples.echo", "wrapper_kernel.examples.plot"])
def test_startup_imports_with_importtime(tmp_path, module):
    """``python -X importtime``: start-up to the first reply imports no IPython/jsonschema/pluggy.

    The kernel runs under ``-X importtime`` until it has answered kernel_info (and, for echo,
    an execute); every import it made shows in its stderr.
    """
    k = RawKernel([sys.executable, "-X", "importtime", "-m", module], tmp_path)
    try:
        k.wait_ready()
        if module.endswith("echo"):
            reply, _ = k.execute("hello")
            assert reply.content["status"] == "ok"
    finally:
        k.close()
    modules = _imported_modules(k.stderr)
    assert "zmq" in modules and "wrapper_kernel.kernelbase" in modules, k.stderr[-2000:]
    tops = {m.split(".")[0] for m in modules}
    heavy = {"IPython", "ipykernel", "jsonschema", "pluggy", "traitlets", "tornado", "numpy"}
    heavy |= {"pexpect", "ptyprocess", "comm", "ipywidgets"}  # REPL and comm support: on use
    assert not heavy & tops, sorted(heavy & tops)
    assert not {"wrapper_kernel.repl", "wrapper_kernel.comms"} & modules
    assert "zmq.asyncio" not in modules


def test_plot_extra_declares_numpy_and_matplotlib():
    """``wrapper-kernel[plot]`` brings numpy and matplotlib; the base package does not."""
    from importlib.metadata import requires

    reqs = requires("wrapper-kernel") or []
    plot = {r.split(";")[0].strip() for r in reqs if "extra ==" in r and "plot" in r}
    base = {r.split(";")[0].strip() for r in reqs if "extra ==" not in r}
    assert {"numpy", "matplotlib"} <= plot, reqs
    assert not any(r.startswith(("numpy", "matplotlib")) for r in base), reqs
