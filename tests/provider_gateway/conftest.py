"""Real gateway servers for the gateway provider's tests.

A Jupyter Kernel Gateway (``jupyter kernelgateway``, in our venv: it shares jupyter_server 2
with the rest) and a Jupyter Enterprise Gateway (``jupyter enterprisegateway`` with its
default local process proxy, in the separate ``.venv-eg`` that scripts/setup.sh makes,
because it pins jupyter_client < 7 and pyzmq < 25), each with an auth token, private
HOME/JUPYTER_* dirs and a kernelspec running our venv's ipykernel; bound to 127.0.0.1 only.
A second Kernel Gateway speaks the legacy JSON websocket protocol (no v1 subprotocol).
Servers start once per session and stop at its end; after every test each gateway's
``/api/kernels`` must be empty and no bridge thread or connection file may be left.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import kernel_mgmt_provider_gateway as provider
from kernel_mgmt_provider_gateway import _discover

ROOT = Path(__file__).resolve().parents[2]
EG_VENV = Path(os.environ.get("KERNEL_MGMT_EG_VENV", ROOT / ".venv-eg"))
#: A schema the test kernelspec carries in its metadata (as gateways' kernelspecs may).
LAUNCH_SCHEMA = {
    "type": "object",
    "properties": {"kernel_flavour": {"type": "string", "default": "plain"}},
    "additionalProperties": False,
}
_PASSED_ENV = (
    "PATH,HOME,JUPYTER_DATA_DIR,JUPYTER_CONFIG_DIR,JUPYTER_RUNTIME_DIR,IPYTHONDIR,MPLBACKEND"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """One running gateway server: its URL, token and a REST helper."""

    def __init__(self, kind: str, home: Path, extra: list[str] | None = None) -> None:
        self.kind = kind
        self.home = home
        self.extra = extra or []
        self.token = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = home / f"{kind}.log"
        self.scheme = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        home = self.home
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "KERNEL_MGMT"))}
        env.update(
            HOME=str(home / "home"),
            JUPYTER_PATH=str(home / "jupyter-path"),
            JUPYTER_DATA_DIR=str(home / "data"),
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            IPYTHONDIR=str(home / "ipython"),
            MPLBACKEND="agg",
            EG_INHERITED_ENVS=_PASSED_ENV,
        )
        return env

    def _command(self) -> list[str]:
        if self.kind.startswith("kg"):
            return [
                str(Path(sys.executable).with_name("jupyter")),
                "kernelgateway",
                "--ip=127.0.0.1",
                f"--port={self.port}",
                "--port_retries=0",
                f"--KernelGatewayApp.auth_token={self.token}",
                f"--KernelGatewayApp.env_process_whitelist={_PASSED_ENV}",
                "--JupyterWebsocketPersonality.list_kernels=True",
                *self.extra,
            ]
        return [
            str(EG_VENV / "bin" / "jupyter"),
            "enterprisegateway",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port_retries=0",
            f"--EnterpriseGatewayApp.auth_token={self.token}",
            "--EnterpriseGatewayApp.list_kernels=True",
            "--EnterpriseGatewayApp.unauthorized_users=nobody",  # default: root may not
            *self.extra,
        ]

    def start(self) -> None:
        for d in ("home", "data", "config", "runtime", "ipython"):
            (self.home / d).mkdir(parents=True, exist_ok=True)
        spec = self.home / "jupyter-path" / "kernels" / "python3"
        spec.mkdir(parents=True, exist_ok=True)
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": f"Python 3 ({self.kind})",
                    "language": "python",
                    "metadata": {"launch_parameter_schema": LAUNCH_SCHEMA, "debugger": True},
                }
            )
        )
        # A kernel that does not publish its shutdown_reply on IOPub (as ipykernel does): its
        # deletion is seen by polling the gateway.
        echo = self.home / "jupyter-path" / "kernels" / "echo"
        echo.mkdir(parents=True, exist_ok=True)
        (echo / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [
                        sys.executable, "-m", "wrapper_kernel.examples.echo",
                        "-f", "{connection_file}",
                    ],
                    "display_name": "Echo",
                    "language": "text",
                }
            )
        )  # fmt: skip
        for _attempt in range(5):  # a port picked by bind(0) may be taken before the server binds
            self.port = _free_port()
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    self._command(),
                    env=self._env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._wait_up(60):
                return
            self.stop()
        raise RuntimeError(
            f"{self.kind} gateway did not start; see {self.log}:\n{self.log.read_text()[-3000:]}"
        )

    def _wait_up(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                r = httpx.get(f"{self.url}/api", headers=self.headers, timeout=2, verify=False)
                if r.status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def kernels(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/kernels", headers=self.headers, timeout=10, verify=False)
        r.raise_for_status()
        return r.json()

    def delete(self, kernel_id: str) -> int:
        r = httpx.delete(
            f"{self.url}/api/kernels/{kernel_id}", headers=self.headers, timeout=30, verify=False
        )
        return r.status_code

    def delete_all(self) -> None:
        for k in self.kernels():
            self.delete(k["id"])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _eg_available() -> str | None:
    if not (EG_VENV / "bin" / "jupyter-enterprisegateway").exists():
        return f"Enterprise Gateway venv {EG_VENV} is missing: run scripts/setup.sh"
    return None


@pytest.fixture(scope="session")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Gateway]]:
    """The three servers, started lazily (each on first use) and stopped at session end."""
    started: dict[str, Gateway] = {}
    lock = threading.Lock()
    base = tmp_path_factory.mktemp("gateways")

    class Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, kind: str) -> Gateway:
            with lock:
                if kind == "eg":
                    why = _eg_available()
                    if why:
                        pytest.fail(why)
                extra = {"kg-json": ["--ZMQChannelsWebsocketConnection.kernel_ws_protocol="]}.get(
                    kind
                )
                gw = Gateway(kind, base / kind, extra)
                gw.start()
                started[kind] = gw
                self[kind] = gw
                return gw

    lazy = Lazy()
    try:
        yield lazy
    finally:
        for gw in started.values():
            try:
                gw.delete_all()
            finally:
                gw.stop()


def _bridge_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("kernel_mgmt-gateway-")]


@pytest.fixture
def local_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private Jupyter dirs for our side (connection files), no gateway settings inherited."""
    for var in list(os.environ):
        if var.startswith(("KERNEL_MGMT_GATEWAY", "JUPYTER_GATEWAY")):
            monkeypatch.delenv(var)
    # The bridge's CurveZMQ policy is the default (auto: encrypted) unless a test sets one.
    monkeypatch.delenv("KERNEL_MGMT_TRANSPORT_ENCRYPTION", raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter-path"))
    monkeypatch.setenv("KERNEL_MGMT_CONFIG", str(tmp_path / "config.toml"))
    (tmp_path / "config.toml").write_text("")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    _discover.clear_cache()
    provider.load_config({})
    return tmp_path


@pytest.fixture(params=["kg", "eg"])
def gateway(
    request: pytest.FixtureRequest,
    gateways: dict[str, Gateway],
    local_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Gateway]:
    """Each gateway in turn, configured through the environment; checked clean afterwards."""
    gw = gateways[request.param]
    yield from _use(gw, local_env, monkeypatch)


@pytest.fixture(params=["kg", "eg", "kg-json"])
def any_protocol(
    request: pytest.FixtureRequest,
    gateways: dict[str, Gateway],
    local_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Gateway]:
    """Both gateways with the v1 subprotocol, and a Kernel Gateway speaking legacy JSON."""
    yield from _use(gateways[request.param], local_env, monkeypatch)


@pytest.fixture
def kg(
    gateways: dict[str, Gateway], local_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    """The Kernel Gateway alone (tests of behaviour that does not differ between servers)."""
    yield from _use(gateways["kg"], local_env, monkeypatch)


@pytest.fixture
def kg_json(
    gateways: dict[str, Gateway], local_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    """A Kernel Gateway that speaks only the legacy JSON websocket protocol."""
    yield from _use(gateways["kg-json"], local_env, monkeypatch)


def _listening() -> set[int]:
    """TCP ports this test process listens on (the bridges' sockets among them)."""
    import psutil

    conns = psutil.Process().net_connections(kind="tcp")
    return {c.laddr.port for c in conns if c.status == "LISTEN" and c.laddr}


def _use(gw: Gateway, local_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("KERNEL_MGMT_GATEWAY_URL", gw.url)
    monkeypatch.setenv("KERNEL_MGMT_GATEWAY_TOKEN", gw.token)
    provider.load_config({})
    before = set(_bridge_threads())
    ports_before = _listening()
    yield gw
    left = gw.kernels() if gw.proc is not None else []
    if left:
        gw.delete_all()
    deadline = time.monotonic() + 10
    while set(_bridge_threads()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    threads = set(_bridge_threads()) - before
    runtime = local_env / "runtime"
    files = sorted(p.name for p in runtime.glob("kernel-*.json")) if runtime.is_dir() else []
    sockets = _listening() - ports_before
    assert not left, f"remote kernels left on the {gw.kind} gateway: {left}"
    assert not sockets, f"sockets still listening on ports {sorted(sockets)}"
    assert not threads, f"bridge threads left: {threads}"
    assert not files, f"connection files left: {files}"


@pytest.fixture
def finder(local_env: Path) -> Any:
    from kernel_mgmt.discovery import KernelFinder

    return KernelFinder.from_entrypoints({})


def which_jupyter() -> str | None:
    return shutil.which("jupyter", path=str(Path(sys.executable).parent))
