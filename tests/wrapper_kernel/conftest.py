"""Fixtures for wrapper_kernel tests: private Jupyter dirs, kernelspecs, raw protocol clients.

Every kernel here is a real process on real ZeroMQ sockets on 127.0.0.1. Kernelspecs go into a
temporary JUPYTER_PATH, never into the user's directories.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from kernel_mgmt.connection import write_connection_file
from kernel_mgmt.protocol import Message, Session

HERE = Path(__file__).parent
KERNELS = HERE / "kernels"

#: argv (before ``-f {connection_file}``) for each kernel the tests use.
KERNEL_ARGV = {
    "wk-echo": [sys.executable, "-m", "wrapper_kernel.examples.echo"],
    "wk-plot": [sys.executable, "-m", "wrapper_kernel.examples.plot"],
    "wk-py": [sys.executable, str(KERNELS / "pykernel.py")],
    "wk-async": [sys.executable, str(KERNELS / "async_kernel.py")],
    "wk-seed-echo": [sys.executable, str(KERNELS / "seed_echo.py")],
    "wk-seed-plot": [sys.executable, str(KERNELS / "seed_plot.py")],
}


def jupyter_env(root: Path) -> dict[str, str]:
    """Environment variables that confine Jupyter to ``root`` and register our kernelspecs."""
    share = root / "share" / "jupyter"
    for name, argv in KERNEL_ARGV.items():
        for mode in ("signal", "message"):
            kname = name if mode == "signal" else f"{name}-msg"
            d = share / "kernels" / kname
            d.mkdir(parents=True, exist_ok=True)
            spec = {
                "argv": [*argv, "-f", "{connection_file}"],
                "display_name": kname,
                "language": "python",
                "interrupt_mode": mode,
                "env": {"MPLBACKEND": "Agg"},
            }
            (d / "kernel.json").write_text(json.dumps(spec))
    return {
        "JUPYTER_PATH": str(share),
        "JUPYTER_DATA_DIR": str(root / "data"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(root / "ipython"),
    }


@pytest.fixture(scope="module")
def jupyter_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private Jupyter tree with all test kernelspecs, active for the whole module."""
    root = tmp_path_factory.mktemp("jupyter")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in jupyter_env(root).items():
            mp.setenv(k, v)
        yield root


class RawKernel:
    """A kernel process plus a hand-driven client: for tests that need exact control of frames.

    Shell, control and stdin are DEALERs sharing one identity (as jupyter_client does), IOPub a
    SUB that is confirmed live (iopub_welcome) before the test starts.
    """

    def __init__(self, argv: list[str], tmp: Path, parent_watch_env: dict[str, str] | None = None):
        tag = uuid.uuid4().hex[:8]
        self.path, self.info = write_connection_file(str(tmp / f"kernel-{tag}.json"))
        env = dict(os.environ, MPLBACKEND="Agg", **(parent_watch_env or {}))
        self._log_path = tmp / f"kernel-{tag}.log"
        self._log = open(self._log_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [*argv, "-f", self.path], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.session = Session(key=self.info["key"])
        self.ctx = zmq.Context()
        ident = self.session.session_id.encode()
        self.sockets: dict[str, zmq.Socket] = {}
        for channel, kind in (
            ("shell", zmq.DEALER),
            ("control", zmq.DEALER),
            ("stdin", zmq.DEALER),
            ("iopub", zmq.SUB),
        ):
            s = self.ctx.socket(kind)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.RECONNECT_IVL, 10)
            if kind == zmq.DEALER:
                s.setsockopt(zmq.IDENTITY, ident)
            else:
                s.setsockopt(zmq.SUBSCRIBE, b"")
            s.connect(f"tcp://127.0.0.1:{self.info[channel + '_port']}")
            self.sockets[channel] = s
        self.stderr = ""

    # -- messaging -------------------------------------------------------------------------------

    def send(self, channel: str, msg_type: str, content: dict[str, Any] | None = None) -> Message:
        return self.session.send(self.sockets[channel], msg_type, content or {})

    def recv(self, channel: str, timeout: float = 10.0) -> Message:
        sock = self.sockets[channel]
        if not sock.poll(int(timeout * 1000)):
            raise TimeoutError(f"nothing on {channel} within {timeout} s; {self.diagnose()}")
        return self.session.deserialize(sock.recv_multipart())

    def reply(self, channel: str, msg: Message, timeout: float = 10.0) -> Message:
        """The reply to ``msg`` on ``channel`` (other messages there are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.recv(channel, max(0.01, deadline - time.monotonic()))
            if got.parent_header.get("msg_id") == msg.msg_id:
                return got

    def iopub_until_idle(self, msg: Message, timeout: float = 10.0) -> list[Message]:
        """IOPub messages for ``msg`` up to and including its ``idle`` status."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            got = self.recv("iopub", max(0.01, deadline - time.monotonic()))
            if got.parent_header.get("msg_id") != msg.msg_id:
                continue
            out.append(got)
            if got.msg_type == "status" and got.content["execution_state"] == "idle":
                return out

    def execute(
        self, code: str, channel: str = "shell", **content: Any
    ) -> tuple[Message, list[Message]]:
        msg = self.send(channel, "execute_request", {"code": code, "silent": False, **content})
        reply = self.reply(channel, msg)
        return reply, self.iopub_until_idle(msg)

    def wait_ready(self, timeout: float = 20.0) -> None:
        """kernel_info answered and the IOPub subscription confirmed by iopub_welcome."""
        deadline = time.monotonic() + timeout
        welcomed = False
        while not welcomed:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no iopub_welcome; {self.diagnose()}")
            sock = self.sockets["iopub"]
            if sock.poll(100):
                welcomed = self.session.deserialize(sock.recv_multipart()).msg_type == (
                    "iopub_welcome"
                )
            elif self.proc.poll() is not None:
                raise RuntimeError(f"kernel exited early: {self.diagnose()}")
        msg = self.send("shell", "kernel_info_request")
        self.reply("shell", msg, timeout=max(0.1, deadline - time.monotonic()))
        self.iopub_until_idle(msg)

    def diagnose(self) -> str:
        self._log.flush()
        return f"kernel returncode={self.proc.poll()}, output: {self.output()[-2000:]!r}"

    def output(self) -> str:
        """What the kernel wrote to stdout/stderr so far (its warnings and logs)."""
        return self._log_path.read_text(errors="replace")

    def close(self) -> None:
        for s in self.sockets.values():
            s.close(0)
        self.ctx.term()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._log.close()
        self.stderr = self.output()
        if os.path.exists(self.path):
            os.unlink(self.path)


@pytest.fixture
def raw_kernel(tmp_path: Path) -> Iterator[Any]:
    """``raw_kernel(name)`` starts a kernel from KERNEL_ARGV and returns a ready RawKernel."""
    started: list[RawKernel] = []

    def start(name: str = "wk-echo") -> RawKernel:
        k = RawKernel(KERNEL_ARGV[name], tmp_path)
        started.append(k)
        k.wait_ready()
        return k

    yield start
    for k in started:
        k.close()
