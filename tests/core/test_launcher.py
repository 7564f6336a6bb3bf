"""SubprocessKernelLauncher / SubprocessIPCKernelLauncher with real kernel processes."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import zmq

from kernel_mgmt.connection import PORT_NAMES, channel_url, read_connection_file
from kernel_mgmt.subproc.launcher import (
    KernelLaunchError,
    SubprocessIPCKernelLauncher,
    SubprocessKernelLauncher,
)
from kernel_mgmt.subproc.manager import KernelManager

from .conftest import TIMEOUT, channel_request, use_curve_keys

IPYKERNEL = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def kernel_info(
    info: dict[str, Any], timeout: float = TIMEOUT, channel: str = "shell"
) -> dict[str, Any]:
    """kernel_info_request on shell or control, with our protocol layer; the reply content."""
    return channel_request(info, "kernel_info_request", channel=channel, timeout=timeout)


def heartbeat(info: dict[str, Any], timeout: float = TIMEOUT) -> bytes:
    """One heartbeat round trip: the kernel echoes what we send on hb."""
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.linger = 0
    use_curve_keys(sock, info)
    try:
        sock.connect(channel_url(info, "hb"))
        sock.send(b"ping")
        if not sock.poll(int(timeout * 1000)):
            raise TimeoutError("no heartbeat echo")
        return sock.recv()
    finally:
        sock.close()


def script_kernel(code: str) -> list[str]:
    """argv for a tiny 'kernel' made of Python code; argv[1] is the connection file."""
    return ["python", "-I", "-S", "-c", code, "{connection_file}"]


# -- argv templating and Popen arguments ---------------------------------------------------


def test_format_kernel_cmd_fills_reserved_and_params() -> None:
    launcher = SubprocessKernelLauncher(
        ["python", "-f", "{connection_file}", "{resource_dir}/x", "{prefix}", "--n={n}", "{nope}"],
        launch_params={"n": 3, "connection_file": "evil", "prefix": "evil"},
        resource_dir="/res",
    )
    cmd = launcher.format_kernel_cmd("/run/kernel-1.json")
    assert cmd == [
        sys.executable,
        "-f",
        "/run/kernel-1.json",
        "/res/x",
        sys.prefix,
        "--n=3",
        "{nope}",
    ]


def test_format_kernel_cmd_reserved_names_never_from_params() -> None:
    launcher = SubprocessKernelLauncher(
        ["prog", "{resource_dir}", "{a}{b}", "{not a placeholder}", "{}"],
        launch_params={"resource_dir": "/evil", "a": "A", "b": ""},
    )
    assert launcher.format_kernel_cmd("c.json") == [
        "prog",
        "{resource_dir}",
        "A",
        "{not a placeholder}",
        "{}",
    ]
    assert launcher.format_kernel_cmd("c.json", "/res")[1] == "/res"


def test_python3_means_this_interpreter() -> None:
    assert SubprocessKernelLauncher(["python3", "-V"]).format_kernel_cmd("f")[0] == sys.executable
    # As jupyter_client: python, python3 and python3.N (this interpreter's version).
    this = "python{}.{}".format(*sys.version_info[:2])
    assert SubprocessKernelLauncher([this]).format_kernel_cmd("f")[0] == sys.executable
    assert SubprocessKernelLauncher(["python2.7"]).format_kernel_cmd("f")[0] == "python2.7"
    assert SubprocessKernelLauncher(["/bin/python3"]).format_kernel_cmd("f")[0] == "/bin/python3"


def test_build_popen_kwargs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONEXECUTABLE", "/somewhere/python")
    launcher = SubprocessKernelLauncher(["k", "{connection_file}"], cwd="/", extra_env={"A": "1"})
    kw = launcher.build_popen_kwargs("/c.json")
    assert kw["args"] == ["k", "/c.json"]
    assert kw["cwd"] == "/"
    assert kw["start_new_session"] is True
    assert kw["env"]["A"] == "1"
    assert kw["env"]["JPY_PARENT_PID"] == str(os.getpid())
    assert "PYTHONEXECUTABLE" not in kw["env"]
    assert os.environ["PYTHONEXECUTABLE"] == "/somewhere/python"  # ours untouched


def test_remote_ip_needs_opt_in() -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        SubprocessKernelLauncher(["k"], ip="0.0.0.0", kernel_name="spec/x")
    assert SubprocessKernelLauncher(["k"], ip="0.0.0.0", allow_remote=True).ip == "0.0.0.0"
    assert SubprocessKernelLauncher(["k"], ip="127.0.0.2").ip == "127.0.0.2"
    assert SubprocessKernelLauncher(["k"]).ip == "127.0.0.1"


def test_bad_arguments() -> None:
    with pytest.raises(KernelLaunchError, match="spec/empty"):
        SubprocessKernelLauncher([], kernel_name="spec/empty")
    with pytest.raises(ValueError, match="interrupt_mode"):
        SubprocessKernelLauncher(["k"], interrupt_mode="carrier-pigeon")
    with pytest.raises(ValueError, match="kernel_id"):
        SubprocessKernelLauncher(["k"], kernel_id="../escape")


# -- real launches ---------------------------------------------------------------------------


async def test_launch_ipykernel_tcp(jupyter_env: Path, reaper: list[KernelManager]) -> None:
    from kernel_mgmt import connection

    reserved, entries = set(connection._reserved), _my_registry_entries()
    launcher = SubprocessKernelLauncher(IPYKERNEL, kernel_name="spec/python3", kernel_id="my-id")
    info, km = await launcher.launch()
    reaper.append(km)
    assert km.kernel_id == "my-id"
    cf = jupyter_env / "kernel-my-id.json"
    assert km.connection_file == str(cf)
    assert stat.S_IMODE(cf.stat().st_mode) == 0o600
    assert read_connection_file(str(cf)) == info
    assert info["transport"] == "tcp" and info["ip"] == "127.0.0.1"
    assert info["kernel_name"] == "spec/python3"
    assert len(info["key"]) == 64 and info["signature_scheme"] == "hmac-sha256"
    # The ports are live: the kernel answers on shell, signed with the file's key.
    reply = await asyncio.to_thread(kernel_info, info)
    assert reply["status"] == "ok" and reply["implementation"] == "ipython"
    control = await asyncio.to_thread(kernel_info, info, TIMEOUT, "control")
    assert control["status"] == "ok"
    assert await asyncio.to_thread(heartbeat, info) == b"ping"
    for name in PORT_NAMES:  # all five held by the kernel (iopub, stdin included)
        with socket.socket() as s, pytest.raises(OSError):
            s.bind(("127.0.0.1", info[name]))
    assert await km.is_alive()
    assert {str(info[n]) for n in PORT_NAMES} <= _my_registry_entries()  # held meanwhile
    await km.kill()
    await km.kill()  # quiet the second time
    await km.cleanup()
    assert not cf.exists()
    assert list(jupyter_env.iterdir()) == []
    # Nothing else left behind: the ports' reservations (here and in the per-user registry).
    assert set(connection._reserved) == reserved
    assert _my_registry_entries() == entries


async def test_launch_ipykernel_ipc(jupyter_env: Path, reaper: list[KernelManager]) -> None:
    info, km = await SubprocessIPCKernelLauncher(IPYKERNEL, kernel_name="spec/py-ipc").launch()
    reaper.append(km)
    assert info["transport"] == "ipc"
    ipc_dir = Path(info["ip"]).parent
    assert ipc_dir.parent == Path(tempfile.gettempdir())
    assert stat.S_IMODE(ipc_dir.stat().st_mode) == 0o700
    assert os.getcwd() not in info["ip"]
    assert channel_url(info, "shell") == f"ipc://{info['ip']}-{info['shell_port']}"
    reply = await asyncio.to_thread(kernel_info, info)
    assert reply["status"] == "ok"
    assert sorted(p.name for p in ipc_dir.iterdir()) == [f"kernel-{n}" for n in range(1, 6)]
    await km.kill()
    await km.cleanup()
    await km.cleanup()
    assert not ipc_dir.exists()
    assert list(jupyter_env.iterdir()) == []


async def test_ipc_launcher_reused_gets_fresh_dirs(
    jupyter_env: Path, reaper: list[KernelManager]
) -> None:
    launcher = SubprocessIPCKernelLauncher(script_kernel("import time; time.sleep(60)"))
    info1, km1 = await launcher.launch()
    reaper.append(km1)
    info2, km2 = await launcher.launch()
    reaper.append(km2)
    assert info1["ip"] != info2["ip"]
    assert km1.kernel_id != km2.kernel_id
    assert km1.connection_file != km2.connection_file


async def test_missing_program_names_kernel_and_leaves_nothing(
    jupyter_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    for cls in (SubprocessKernelLauncher, SubprocessIPCKernelLauncher):
        launcher = cls(
            ["no-such-kernel-program-xyz", "-f", "{connection_file}"], kernel_name="spec/ghost"
        )
        with pytest.raises(KernelLaunchError) as exc:
            await launcher.launch()
        msg = str(exc.value)
        assert "spec/ghost" in msg and "no-such-kernel-program-xyz" in msg and "not found" in msg
        assert not jupyter_env.exists() or list(jupyter_env.iterdir()) == []
        assert list(tmp.iterdir()) == []  # no private ipc directory either


async def test_unwritable_runtime_dir_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(blocker / "runtime"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    for cls in (SubprocessKernelLauncher, SubprocessIPCKernelLauncher):
        with pytest.raises(KernelLaunchError, match="JUPYTER_RUNTIME_DIR") as exc:
            await cls(script_kernel("pass"), kernel_name="spec/k").launch()
        assert "spec/k" in str(exc.value)
        assert list(tmp.iterdir()) == []


async def test_missing_cwd_is_a_clear_error(jupyter_env: Path, tmp_path: Path) -> None:
    launcher = SubprocessKernelLauncher(
        script_kernel("pass"), cwd=str(tmp_path / "gone"), kernel_name="spec/k"
    )
    with pytest.raises(KernelLaunchError, match="working directory"):
        await launcher.launch()
    assert list(jupyter_env.iterdir()) == []


async def test_not_executable_is_a_clear_error(jupyter_env: Path, tmp_path: Path) -> None:
    prog = tmp_path / "kernel.sh"
    prog.write_text("#!/bin/sh\n")
    with pytest.raises(KernelLaunchError, match="not executable"):
        await SubprocessKernelLauncher([str(prog)], kernel_name="spec/k").launch()
    assert list(jupyter_env.iterdir()) == []


async def test_cwd_env_and_session(
    jupyter_env: Path, tmp_path: Path, reaper: list[KernelManager]
) -> None:
    out = tmp_path / "out.json"
    code = (
        "import json, os, sys; json.dump({'cwd': os.getcwd(), 'a': os.environ.get('KM_A'),"
        " 'sid': os.getsid(0), 'pid': os.getpid(), 'cf': sys.argv[1],"
        " 'parent': os.environ.get('JPY_PARENT_PID')}, open(sys.argv[2], 'w'))"
    )
    launcher = SubprocessKernelLauncher(
        [*script_kernel(code), "{out}"],
        cwd=str(tmp_path),
        extra_env={"KM_A": "yes"},
        launch_params={"out": str(out)},
    )
    _info, km = await launcher.launch()
    reaper.append(km)
    assert await km.wait(TIMEOUT) is False
    assert km.returncode == 0
    got = json.loads(out.read_text())
    assert got["cwd"] == str(tmp_path) and got["a"] == "yes"
    assert got["sid"] == got["pid"] == km.pid  # own session → own process group
    assert got["cf"] == km.connection_file
    assert got["parent"] == str(os.getpid())


async def test_stderr_is_forwarded_and_tail_kept(
    jupyter_env: Path, reaper: list[KernelManager]
) -> None:
    sink = io.StringIO()
    code = "import sys; print('boom: cannot start', file=sys.stderr); sys.exit(3)"
    _info, km = await SubprocessKernelLauncher(script_kernel(code), stderr_sink=sink).launch()
    reaper.append(km)
    assert await km.wait(TIMEOUT) is False
    assert km.returncode == 3
    assert km.stderr_tail() == "boom: cannot start"  # no waiting for the drain needed
    assert sink.getvalue() == "boom: cannot start\n"


async def test_chatty_kernel_never_blocks_on_stderr(
    jupyter_env: Path, reaper: list[KernelManager]
) -> None:
    # 4 MB through the pipe (64 KiB buffer): only finishes if we keep draining.
    code = (
        "import sys\nfor i in range(40000): sys.stderr.write('%06d ' % i + 'x' * 93 + '\\n')\n"
        "sys.stderr.write('last line\\n')"
    )
    sink = io.StringIO()
    _info, km = await SubprocessKernelLauncher(script_kernel(code), stderr_sink=sink).launch()
    reaper.append(km)
    assert await km.wait(TIMEOUT) is False
    assert km.returncode == 0
    assert km._stderr is not None and km._stderr.join(TIMEOUT)
    tail = km.stderr_tail().splitlines()
    assert len(tail) == 50 and tail[-1] == "last line" and tail[0].startswith("039951 ")
    assert sink.getvalue().count("\n") == 40001


# -- through the finder (spec and pyimport providers) ----------------------------------------


def write_spec(jupyter_env: Path, name: str, spec: dict[str, Any]) -> Path:
    """Install kernelspec *name* into the test's private JUPYTER_PATH."""
    resource_dir = jupyter_env.parent / "path" / "kernels" / name
    resource_dir.mkdir(parents=True)
    (resource_dir / "kernel.json").write_text(
        json.dumps({"display_name": name, "language": "python", **spec})
    )
    return resource_dir


@pytest.fixture
def finder(jupyter_env: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from kernel_mgmt.discovery import KernelFinder

    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(jupyter_env.parent / "config"))
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "spec,pyimport")
    return KernelFinder.from_entrypoints(timeout=TIMEOUT)


async def test_finder_launches_spec_ipykernel(
    jupyter_env: Path, finder: Any, reaper: list[KernelManager]
) -> None:
    write_spec(jupyter_env, "py-test", {"argv": IPYKERNEL, "env": {"KM_SPEC_ENV": "1"}})
    info, km = await finder.launch("spec/py-test")
    reaper.append(km)
    assert isinstance(km, KernelManager)
    assert stat.S_IMODE(Path(km.connection_file).stat().st_mode) == 0o600
    assert Path(km.connection_file).parent == jupyter_env
    reply = await asyncio.to_thread(kernel_info, info)
    assert reply["status"] == "ok"
    await km.kill()
    await km.cleanup()
    assert list(jupyter_env.iterdir()) == []


async def test_finder_launches_pyimport_kernel(
    jupyter_env: Path, finder: Any, reaper: list[KernelManager]
) -> None:
    info, km = await finder.launch("pyimport/kernel")
    reaper.append(km)
    cf = Path(km.connection_file)
    assert cf.parent == jupyter_env and stat.S_IMODE(cf.stat().st_mode) == 0o600
    assert read_connection_file(str(cf)) == info and len(info["key"]) == 64
    reply = await asyncio.to_thread(kernel_info, info)
    assert reply["status"] == "ok" and reply["implementation"] == "ipython"
    assert await asyncio.to_thread(heartbeat, info) == b"ping"
    await km.kill()
    await km.cleanup()
    assert list(jupyter_env.iterdir()) == []


async def test_finder_spec_env_params_and_interrupt_mode(
    jupyter_env: Path, tmp_path: Path, finder: Any, reaper: list[KernelManager]
) -> None:
    out = tmp_path / "out.json"
    code = (
        "import json, os, sys; json.dump({'argv': sys.argv[1:], 'env': os.environ.get('KM_X')},"
        " open(os.environ['KM_OUT'], 'w'))"
    )
    schema = {
        "type": "object",
        "properties": {"size": {"type": "integer", "default": 3}, "mode": {"type": "string"}},
        "additionalProperties": False,
    }
    write_spec(
        jupyter_env,
        "params",
        {
            "argv": [*script_kernel(code), "{resource_dir}", "--size={size}", "{mode}"],
            "env": {"KM_X": "from-spec", "KM_OUT": str(out)},
            "interrupt_mode": "message",
            "metadata": {"launch_parameter_schema": schema},
        },
    )
    _info, km = await finder.launch("spec/params", cwd=str(tmp_path))
    reaper.append(km)
    assert km.interrupt_mode == "message"
    assert await km.wait(TIMEOUT) is False and km.returncode == 0
    got = json.loads(out.read_text())
    assert got["env"] == "from-spec"
    resource_dir = str(jupyter_env.parent / "path" / "kernels" / "params")
    # Default applied; an unset placeholder stays literal.
    assert got["argv"] == [km.connection_file, resource_dir, "--size=3", "{mode}"]


async def test_finder_invalid_params_start_nothing(
    jupyter_env: Path, tmp_path: Path, finder: Any
) -> None:
    from kernel_mgmt.discovery import InvalidLaunchParams

    marker = tmp_path / "started"
    schema = {"type": "object", "properties": {"size": {"type": "integer"}}}
    write_spec(
        jupyter_env,
        "strict",
        {
            "argv": [*script_kernel(f"open({str(marker)!r}, 'w')"), "{size}"],
            "metadata": {"launch_parameter_schema": schema},
        },
    )
    with pytest.raises(InvalidLaunchParams, match="spec/strict") as exc:
        await finder.launch("spec/strict", launch_params={"size": "big"})
    assert "size" in str(exc.value)
    assert not jupyter_env.exists() or list(jupyter_env.iterdir()) == []
    assert not marker.exists()


async def test_finder_missing_program_and_unknown_id(jupyter_env: Path, finder: Any) -> None:
    from kernel_mgmt.discovery import NoSuchKernel

    write_spec(jupyter_env, "ghost", {"argv": ["no-such-kernel-program-xyz", "{connection_file}"]})
    with pytest.raises(KernelLaunchError) as exc:
        await finder.launch("spec/ghost")
    assert "ghost" in str(exc.value) and "no-such-kernel-program-xyz" in str(exc.value)
    assert not jupyter_env.exists() or list(jupyter_env.iterdir()) == []
    with pytest.raises(NoSuchKernel, match="spec/nope"):
        await finder.launch("spec/nope")
    with pytest.raises(NoSuchKernel, match="nobody/x"):
        await finder.launch("nobody/x")


def _my_registry_entries() -> set[str]:
    from kernel_mgmt import connection

    registry = connection._registry_dir()
    if registry is None:
        return set()
    mine = set()
    for name in os.listdir(registry):
        try:
            with open(os.path.join(registry, name)) as f:
                if f.read() == str(os.getpid()):
                    mine.add(name)
        except OSError:
            pass
    return mine


async def test_failed_launches_release_their_ports(
    jupyter_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A launch that fails must not keep its five ports reserved (in this process and in the
    per-user registry other processes consult) for RESERVATION_SECONDS."""
    from kernel_mgmt import connection

    reserved, entries = set(connection._reserved), _my_registry_entries()
    for argv, cwd in [
        (["no-such-kernel-program-xyz", "{connection_file}"], None),
        (script_kernel("pass"), str(tmp_path / "gone")),
    ]:
        with pytest.raises(KernelLaunchError):
            await SubprocessKernelLauncher(argv, cwd=cwd, kernel_name="spec/k").launch()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(blocker / "runtime"))
    with pytest.raises(KernelLaunchError, match="JUPYTER_RUNTIME_DIR"):
        await SubprocessKernelLauncher(script_kernel("pass"), kernel_name="spec/k").launch()
    assert set(connection._reserved) == reserved
    assert _my_registry_entries() == entries


# -- the seed's documented API (jupyter_kernel_mgmt 0.5.1 docs, 1.2, 7.1-7.4, 8.4-8.5) --------


async def test_seed_launcher_and_manager_api(jupyter_env: Path, tmp_path: Path) -> None:
    """Sections 8.4-8.5 as documented, with only ``jupyter_kernel_mgmt`` → ``kernel_mgmt``."""
    import signal

    from kernel_mgmt.managerabc import KernelManagerABC
    from kernel_mgmt.subproc.launcher import SubprocessKernelLauncher
    from kernel_mgmt.subproc.manager import KernelManager

    # SubprocessKernelLauncher(kernel_cmd, cwd, extra_env=None, ip=None, launch_params=None)
    launcher = SubprocessKernelLauncher(IPYKERNEL, str(tmp_path), None, None, None)
    ports = launcher.make_ports()  # "Randomly select available ports for each of port_names"
    assert set(ports) == set(PORT_NAMES) and len(set(ports.values())) == 5
    from kernel_mgmt.connection import release_ports

    release_ports(list(ports.values()))
    # "Generates a JSON config file, including the selection of random ports."
    connection_file, connection_info = launcher.make_connection_file()
    try:
        assert read_connection_file(connection_file) == connection_info
        cmd = launcher.format_kernel_cmd(connection_file, kernel_resource_dir=None)
        assert cmd == [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file]
        assert launcher.build_popen_kwargs(connection_file)["args"] == cmd
        assert list(launcher.files_to_cleanup(connection_file, connection_info)) == [
            connection_file
        ]
    finally:
        os.unlink(connection_file)
        release_ports([connection_info[n] for n in PORT_NAMES])

    # "async launch(): The main method to launch a kernel. Returns (connection_info,
    # kernel_manager)"
    connection_info, manager = await launcher.launch()
    try:
        assert isinstance(manager, KernelManager) and isinstance(manager, KernelManagerABC)
        assert manager.kernel_id
        assert await manager.is_alive() is True
        assert (await asyncio.to_thread(kernel_info, connection_info))["status"] == "ok"
        await manager.interrupt()  # idle ipykernel ignores SIGINT
        await manager.signal(signal.SIGTERM)
        assert await manager.wait() is False  # "False if it exited (like is_alive())"
        assert await manager.is_alive() is False
        await manager.kill()  # already gone: quiet
    finally:
        await manager.kill()
        await manager.cleanup()
    assert list(jupyter_env.iterdir()) == []


async def test_seed_provider_finder_and_client_flow(jupyter_env: Path) -> None:
    """The 7.1 provider example and the 7.2 / 1.2 launch-and-connect snippet, as written in the
    seed docs (asyncio.coroutine, gone from Python 3.11, replaced by a plain generator)."""
    from kernel_mgmt import KernelManager  # the seed's `from jupyter_kernel_mgmt import ...`
    from kernel_mgmt.client import IOLoopKernelClient
    from kernel_mgmt.discovery import KernelFinder, KernelProviderBase
    from kernel_mgmt.subproc.launcher import SubprocessKernelLauncher

    async def my_launch_method(cwd, launch_params, kernel_cmd, extra_env):  # type: ignore[no-untyped-def]
        return await SubprocessKernelLauncher(
            kernel_cmd=kernel_cmd, cwd=cwd, extra_env=extra_env, launch_params=launch_params
        ).launch()

    class OblongKernelProvider(KernelProviderBase):
        id = "oblong"

        def find_kernels(self):  # type: ignore[no-untyped-def]
            yield (
                "standard",
                {
                    "display_name": "Oblong (standard)",
                    "language": {"name": "oblong"},
                    "argv": IPYKERNEL,
                },
            )
            yield (
                "rounded",
                {
                    "display_name": "Oblong (rounded)",
                    "language": {"name": "oblong"},
                    "argv": IPYKERNEL,
                },
            )

        async def launch(self, name, cwd=None, launch_params=None):  # type: ignore[no-untyped-def]
            if name == "standard":
                rounded = "0"
            elif name == "rounded":
                rounded = "1"
            else:
                raise ValueError("Unknown kernel %s" % name)  # noqa: UP031 - the seed's code
            return await my_launch_method(
                cwd=cwd,
                launch_params=launch_params,
                kernel_cmd=IPYKERNEL,
                extra_env={"ROUNDED": rounded},
            )

    kf = KernelFinder([OblongKernelProvider()])
    names = [name for name, attributes in kf.find_kernels()]
    assert sorted(names) == ["oblong/rounded", "oblong/standard"]

    connect_info, manager = await kf.launch("oblong/rounded")
    assert isinstance(manager, KernelManager)
    client = IOLoopKernelClient(connect_info, manager=manager)
    try:
        await asyncio.wait_for(client.wait_for_ready(), timeout=TIMEOUT)
        reply = await client.execute("import os; x = os.environ['ROUNDED']")
        assert reply.content["status"] == "ok"
        reply = await client.execute("", user_expressions={"x": "x"})
        assert reply.content["user_expressions"]["x"]["data"]["text/plain"] == "'1'"
        await client.shutdown_or_terminate()
    finally:
        await client.close()
        await manager.kill()
        await manager.cleanup()
    assert await manager.is_alive() is False
    assert list(jupyter_env.iterdir()) == []
