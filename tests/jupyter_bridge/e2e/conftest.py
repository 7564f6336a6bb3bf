"""End-to-end harness: real Jupyter Server / JupyterLab subprocesses with the bridge installed.

Everything a server reads lives in a private tree made per module (``JupyterWorld``): HOME,
JUPYTER_CONFIG_DIR / JUPYTER_DATA_DIR / JUPYTER_RUNTIME_DIR, a conda root prefix of real Python
environments found through ``MAMBA_ROOT_PREFIX`` and ``~/.conda/environments.txt``, and an
echo wrapper kernel installed into the private data dir by wrapper_kernel's own installer. No
jupyter config of ours is written: the bridge is enabled only by the config file the package
installs into ``<sys.prefix>/etc/jupyter`` (part of jupyter's config path), which is kept.

``JupyterServer`` starts ``jupyter server`` (or ``jupyter lab``) on 127.0.0.1 with a random free
port (retried when another process takes it first) and a token, waits for ``/api/status``, and on
stop deletes the kernels, shuts the server down and checks that none of its child processes and
no new file in the runtime dir is left (only the server's own children are looked at, never the
machine's process list). ``KernelChannels`` speaks the JSON websocket protocol of
``/api/kernels/<id>/channels``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from websockets.sync.client import ClientConnection, connect

#: Seconds to wait for a server to answer /api/status (a lab start is several seconds; CI is
#: loaded with other jobs).
START_TIMEOUT = 120.0
#: Seconds for one REST call (kernel start and restart go through it).
REST_TIMEOUT = 90.0
#: Seconds for a kernel to answer an execute request.
EXECUTE_TIMEOUT = 60.0

_SCRUBBED_PREFIXES = ("JUPYTER", "CONDA", "MAMBA_", "KERNEL_MGMT", "IPYTHON", "XDG_", "_CE_")
_SCRUBBED = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "JPY_PARENT_PID"}


def bridge_installed() -> bool:
    """Whether the bridge package is importable from this Python (the server's Python)."""
    import importlib.util

    return importlib.util.find_spec("kernel_mgmt_jupyter") is not None


def require_bridge() -> None:
    """Fail (never skip) when the package under test is missing: it is part of the checkout."""
    if not bridge_installed():
        pytest.fail(
            "kernel_mgmt_jupyter is not installed in this Python: run `bash scripts/setup.sh` "
            "(it installs packages/jupyter-bridge editable)"
        )


# ---------------------------------------------------------------------------------------------
# Real conda-style environments


def _site_packages(prefix: Path) -> Path:
    rel = sysconfig.get_path("purelib", vars={"base": "X"}).split("X", 1)[1].lstrip(os.sep)
    return prefix / rel


def make_conda_env(prefix: Path, *, real_python: bool, kernel_display: str = "Python 3") -> Path:
    """A conda-style environment: ``conda-meta/history`` and a python3 kernelspec.

    With ``real_python`` it is a real interpreter made by ``python -m venv`` (so ``sys.prefix``
    inside a kernel is ``prefix``) which imports this test environment's ipykernel through a
    .pth file, as conda's own ipykernel package would provide it.
    """
    if real_python:
        base_python = getattr(sys, "_base_executable", sys.executable)
        subprocess.run(
            [base_python, "-m", "venv", "--without-pip", str(prefix)],
            check=True,
            timeout=120,
        )
        site = _site_packages(prefix)
        site.mkdir(parents=True, exist_ok=True)
        (site / "_kernel_mgmt_test_parent.pth").write_text(sysconfig.get_path("purelib") + "\n")
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "history").write_text("==> 2024-01-01 00:00:00 <==\n# cmd: conda create\n")
    version = ".".join(str(v) for v in sys.version_info[:3])
    for record in (f"python-{version}-h0_0_cpython", "ipykernel-7.4.0-pyh0_0"):
        name, ver, build = record.rsplit("-", 2)
        (meta / f"{record}.json").write_text(
            json.dumps({"name": name, "version": ver, "build": build})
        )
    folder = prefix / "share" / "jupyter" / "kernels" / "python3"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": kernel_display,
                "language": "python",
            }
        )
    )
    return prefix


# ---------------------------------------------------------------------------------------------
# The private world a server runs in


class JupyterWorld:
    """A private HOME / Jupyter dirs / conda root for servers of one test module."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.config_dir = root / "jupyter-config"
        self.data_dir = root / "jupyter-data"
        self.runtime_dir = root / "jupyter-runtime"
        self.notebooks = root / "notebooks"
        self.conda_root = root / "miniconda3"
        self.outside_envs = root / "elsewhere"
        for d in (
            self.home / ".conda",
            self.config_dir,
            self.data_dir,
            self.runtime_dir,
            self.notebooks,
            self.outside_envs,
        ):
            d.mkdir(parents=True, exist_ok=True)
        self.pythonpath: list[str] = []
        self.extra_env: dict[str, str] = {}

    # conda ----------------------------------------------------------------------------------
    def make_conda(
        self,
        real: tuple[str, ...] = ("realenv",),
        listed: str | None = None,
        folders_only: tuple[str, ...] = (),
    ) -> None:
        """A base env at the root (no interpreter), real envs in ``<root>/envs`` and optionally
        one real env outside the root, announced only in ``~/.conda/environments.txt``;
        ``folders_only`` envs have no interpreter (enough for listings)."""
        make_conda_env(self.conda_root, real_python=False)
        for name in real:
            make_conda_env(self.conda_root / "envs" / name, real_python=True)
        for name in folders_only:
            make_conda_env(self.conda_root / "envs" / name, real_python=False)
        if listed:
            prefix = make_conda_env(self.outside_envs / listed, real_python=True)
            (self.home / ".conda" / "environments.txt").write_text(f"{prefix}\n")

    def env_prefix(self, name: str) -> Path:
        listed = self.outside_envs / name
        return listed if listed.exists() else self.conda_root / "envs" / name

    # kernels --------------------------------------------------------------------------------
    def install_echo_kernel(self) -> Path:
        """wrapper_kernel's echo example, installed by its own installer into the data dir."""
        r = subprocess.run(
            [sys.executable, "-m", "wrapper_kernel.examples.echo", "install", "--user"],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        spec = self.data_dir / "kernels" / "echo" / "kernel.json"
        assert spec.exists(), r.stdout
        return spec

    def install_message_mode_kernel(self, name: str = "pymsg") -> Path:
        """An ipykernel kernelspec folder with ``interrupt_mode: message`` (interrupts go as
        ``interrupt_request`` on the control channel, not SIGINT)."""
        folder = self.data_dir / "kernels" / name
        folder.mkdir(parents=True, exist_ok=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python (message interrupts)",
            "language": "python",
            "interrupt_mode": "message",
        }
        (folder / "kernel.json").write_text(json.dumps(spec))
        return folder

    def kernel_mgmt_config(self, text: str) -> Path:
        """The user's kernel_mgmt config (``~/.config/kernel_mgmt/config.toml``)."""
        path = self.home / ".config" / "kernel_mgmt" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    # environment ----------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """The environment of a server (and of anything else run in this world)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED
        }
        env.update(
            HOME=str(self.home),
            JUPYTER_CONFIG_DIR=str(self.config_dir),
            JUPYTER_DATA_DIR=str(self.data_dir),
            JUPYTER_RUNTIME_DIR=str(self.runtime_dir),
            JUPYTER_PLATFORM_DIRS="1",
            IPYTHONDIR=str(self.home / ".ipython"),
            KERNEL_MGMT_CONDA_CACHE_DIR=str(self.root / "conda-cache"),
            PATH=os.pathsep.join([str(Path(sys.executable).parent), env_path()]),
        )
        if self.conda_root.exists():
            env["MAMBA_ROOT_PREFIX"] = str(self.conda_root)
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(self.pythonpath)
        env.update(self.extra_env)
        return env


def env_path() -> str:
    return os.environ.get("PATH", "/usr/bin:/bin")


# ---------------------------------------------------------------------------------------------
# A server subprocess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerStartError(RuntimeError):
    pass


class JupyterServer:
    """One ``jupyter server`` / ``jupyter lab`` subprocess in a ``JupyterWorld``."""

    def __init__(self, world: JupyterWorld, app: str = "server", args: tuple[str, ...] = ()):
        self.world = world
        self.app = app
        self.args = args
        self.token = uuid.uuid4().hex
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = world.root / f"{app}-{uuid.uuid4().hex[:6]}.log"
        self.known_children: dict[int, psutil.Process] = {}
        self._runtime_before: set[str] = set()

    # lifecycle ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self, port: int) -> list[str]:
        module = "jupyterlab" if self.app == "lab" else "jupyter_server"
        return [
            sys.executable,
            "-m",
            module,
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.world.notebooks}",
            *(["--allow-root"] if os.geteuid() == 0 else []),
            *self.args,
        ]

    def start(self, attempts: int = 5) -> JupyterServer:
        """Start on a free port (another process may take it between our probe and the
        server's bind: then try another), and wait until ``/api/status`` answers."""
        self._runtime_before = self.runtime_files()
        last = ""
        for _ in range(attempts):
            self.port = free_port()
            log = self.log_path.open("ab")
            self.proc = subprocess.Popen(
                self.argv(self.port),
                env=self.world.env(),
                cwd=self.world.notebooks,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            log.close()
            try:
                self._wait_ready(START_TIMEOUT)
                return self
            except ServerStartError as e:
                last = str(e)
                self._kill()
                if "already in use" not in last and "Address already" not in last:
                    break
        raise ServerStartError(last)

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"jupyter {self.app} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                status, _ = self.request("GET", "/api/status", timeout=5)
                if status == 200:
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise ServerStartError(
            f"jupyter {self.app} did not answer /api/status in {timeout:g} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def runtime_files(self) -> set[str]:
        return {p.name for p in self.world.runtime_dir.rglob("*") if p.is_file()}

    def children(self) -> list[psutil.Process]:
        """The server's live descendants (kernels and their helpers); remembered for stop()."""
        assert self.proc is not None
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for k in kids:
            self.known_children.setdefault(k.pid, k)
        return kids

    def stop(self) -> None:
        """Delete every kernel, shut the server down, and check nothing is left behind."""
        if self.proc is None:
            return
        problems: list[str] = []
        self.children()
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                _, kernels = self.request("GET", "/api/kernels", timeout=30)
                for k in kernels or []:
                    self.request("DELETE", f"/api/kernels/{k['id']}", timeout=60)
            self.children()
            with contextlib.suppress(Exception):
                self.request("POST", "/api/shutdown", timeout=30)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                problems.append("the server did not exit after /api/shutdown")
                self._kill()
        leftover = [p for p in self.known_children.values() if process_alive(p)]
        for p in leftover:
            with contextlib.suppress(psutil.Error):
                problems.append(f"left process {p.pid}: {' '.join(p.cmdline())}")
                p.kill()
        # The server's own jpserver-<pid>.json / -open.html are removed on a clean exit too;
        # only its cookie secret stays (it is reused by the next start).
        files = self.runtime_files() - self._runtime_before - {"jupyter_cookie_secret"}
        if files:
            problems.append(f"left files in the runtime dir: {sorted(files)}")
        self.proc = None
        if problems:
            raise AssertionError(
                f"jupyter {self.app} left things behind:\n"
                + "\n".join(problems)
                + f"\n{self.log_tail()}"
            )

    def _kill(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.children()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        for p in self.known_children.values():
            if process_alive(p):
                with contextlib.suppress(psutil.Error):
                    p.kill()

    # REST -----------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, body: Any = None, timeout: float = REST_TIMEOUT
    ) -> tuple[int, Any]:
        """One REST call with the token; returns (status, decoded JSON or None)."""
        data = None if body is None else json.dumps(body).encode()
        if data is None and method in ("POST", "PATCH", "PUT"):
            data = b"{}"
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = raw.decode(errors="replace")
            return e.code, payload

    def ok(self, method: str, path: str, body: Any = None, timeout: float = REST_TIMEOUT) -> Any:
        status, payload = self.request(method, path, body, timeout)
        assert 200 <= status < 300, f"{method} {path} -> {status}: {payload}\n{self.log_tail(30)}"
        return payload

    def kernelspecs(self) -> dict[str, Any]:
        return self.ok("GET", "/api/kernelspecs")

    def start_kernel(self, name: str, path: str | None = None) -> str:
        body: dict[str, Any] = {"name": name}
        if path is not None:
            body["path"] = path
        return self.ok("POST", "/api/kernels", body)["id"]

    def channels(self, kernel_id: str) -> KernelChannels:
        return KernelChannels(self, kernel_id)


def process_alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# The kernel websocket


class KernelChannels:
    """``/api/kernels/<id>/channels`` with the JSON (non-binary) message format."""

    def __init__(self, server: JupyterServer, kernel_id: str) -> None:
        self.kernel_id = kernel_id
        self.session = uuid.uuid4().hex
        url = (
            f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels"
            f"?session_id={self.session}"
        )
        self._stack = contextlib.ExitStack()
        # Entered as a context manager: the form every websockets release supports.
        self.ws: ClientConnection = self._stack.enter_context(
            connect(
                url,
                additional_headers={"Authorization": f"token {server.token}"},
                open_timeout=60,
                max_size=None,
            )
        )
        #: Every message received, in order (status broadcasts included).
        self.received: list[dict[str, Any]] = []

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> KernelChannels:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        msg_id = uuid.uuid4().hex
        msg = {
            "header": {
                "msg_id": msg_id,
                "msg_type": msg_type,
                "username": "e2e",
                "session": self.session,
                "date": datetime.now(UTC).isoformat(),
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": channel,
            "buffers": [],
        }
        self.ws.send(json.dumps(msg))
        return msg_id

    def recv(self, timeout: float) -> dict[str, Any]:
        msg = json.loads(self.ws.recv(timeout=timeout))
        self.received.append(msg)
        return msg

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict:
        """The first message (already received or new) that ``match`` accepts."""
        for msg in self.received:
            if match(msg):
                return msg
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            try:
                msg = self.recv(left)
            except TimeoutError:
                continue
            if match(msg):
                return msg

    def kernel_info(self, timeout: float = EXECUTE_TIMEOUT) -> dict[str, Any]:
        msg_id = self.send("shell", "kernel_info_request", {})
        return self.wait_for(
            lambda m: (
                m.get("parent_header", {}).get("msg_id") == msg_id
                and m.get("msg_type") == "kernel_info_reply"
            ),
            timeout,
            "kernel_info_reply",
        )

    def execute(
        self,
        code: str,
        timeout: float = EXECUTE_TIMEOUT,
        on_started: Callable[[], None] | None = None,
        started_marker: str | None = None,
    ) -> Execution:
        """Run ``code``; return its reply and output once IOPub says idle.

        With ``started_marker``, ``on_started`` is called once that text has appeared on
        stdout (the code is running; e.g. to interrupt it then).
        """
        msg_id = self.send(
            "shell",
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )
        result = Execution()
        deadline = time.monotonic() + timeout
        fired = False
        while result.reply is None or not result.idle:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no execute_reply/idle for {code!r} in {timeout:g} s; got {result}"
                )
            try:
                msg = self.recv(left)
            except TimeoutError:
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg.get("msg_type")
            content = msg.get("content", {})
            if kind == "execute_reply":
                result.reply = content
            elif kind == "stream":
                setattr(result, content["name"], getattr(result, content["name"]) + content["text"])
            elif kind == "error":
                result.error = content
            elif kind == "execute_result":
                result.result = content.get("data", {}).get("text/plain")
            elif kind == "status" and content.get("execution_state") == "idle":
                result.idle = True
            if started_marker and not fired and started_marker in result.stdout:
                fired = True
                assert on_started is not None
                on_started()
        return result


class Execution:
    """What one execute_request produced."""

    def __init__(self) -> None:
        self.reply: dict[str, Any] | None = None
        self.stdout = ""
        self.stderr = ""
        self.error: dict[str, Any] | None = None
        self.result: str | None = None
        self.idle = False

    def __repr__(self) -> str:
        return (
            f"Execution(reply={self.reply}, stdout={self.stdout!r}, stderr={self.stderr!r}, "
            f"error={self.error}, result={self.result!r})"
        )


# ---------------------------------------------------------------------------------------------
# Finding kernels in /api/kernelspecs by what they are, not by the bridge's naming scheme


def type_id_of(spec_model: dict[str, Any]) -> str | None:
    """The kernel_mgmt type id a kernelspec model names in its provisioner metadata."""
    prov = spec_model.get("spec", {}).get("metadata", {}).get("kernel_provisioner", {})
    if prov.get("provisioner_name") != "kernel-mgmt":
        return None
    return prov.get("config", {}).get("type_id")


def by_type_id(specs: dict[str, Any]) -> dict[str, str]:
    """``{type_id: jupyter kernel name}`` for every provisioner-backed kernelspec listed."""
    out: dict[str, str] = {}
    for name, model in specs["kernelspecs"].items():
        tid = type_id_of(model)
        if tid:
            out[tid] = name
    return out


def name_for(server: JupyterServer, type_id: str) -> str:
    names = by_type_id(server.kernelspecs())
    assert type_id in names, f"{type_id} not in /api/kernelspecs: {sorted(names)}"
    return names[type_id]


@contextlib.contextmanager
def running_kernel(server: JupyterServer, name: str) -> Iterator[tuple[str, KernelChannels]]:
    """A kernel started through REST with an open channels websocket; deleted afterwards."""
    kernel_id = server.start_kernel(name)
    try:
        with server.channels(kernel_id) as ch:
            ch.kernel_info()
            yield kernel_id, ch
    finally:
        with contextlib.suppress(Exception):
            server.request("DELETE", f"/api/kernels/{kernel_id}", timeout=60)


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def e2e_world(tmp_path_factory: pytest.TempPathFactory) -> JupyterWorld:
    """A module's private world: two real conda envs (one in the root's envs dir, one listed
    in environments.txt) and the echo wrapper kernel."""
    w = JupyterWorld(tmp_path_factory.mktemp("jupyter-world"))
    w.make_conda(real=("realenv",), listed="listedenv")
    w.install_echo_kernel()
    w.install_message_mode_kernel()
    return w


@pytest.fixture(scope="module")
def server(e2e_world: JupyterWorld) -> Iterator[JupyterServer]:
    """One jupyter server with the bridge, shared by a module's tests."""
    require_bridge()
    s = JupyterServer(e2e_world).start()
    try:
        yield s
    finally:
        s.stop()
