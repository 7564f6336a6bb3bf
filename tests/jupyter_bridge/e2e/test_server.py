"""A real ``jupyter server`` with the bridge installed, through its REST and websocket API.

One server (module-scoped) serves the listing and lifecycle tests; the broken-provider test
starts its own. Kernels are found by the type id in their provisioner metadata (or, for the
spec provider, by the name the issue fixes), never by the bridge's naming scheme.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from .conftest import (
    JupyterServer,
    JupyterWorld,
    by_type_id,
    name_for,
    process_alive,
    require_bridge,
    running_kernel,
    type_id_of,
    wait_until,
)

pytestmark = pytest.mark.timeout(300)

#: jupyter_server's URL pattern for a kernel name (``_kernel_name_regex``).
URL_NAME = re.compile(r"^[\w\.\-%]+$")

REAL_ENV = "conda/realenv-python3"
LISTED_ENV = "conda/listedenv-python3"
PID = "import os; print(os.getpid())"


def pid_of(ch: Any) -> int:
    r = ch.execute(PID)
    assert r.reply["status"] == "ok", r
    return int(r.stdout.split()[-1])


# ---------------------------------------------------------------------------------------------
# Listing


def test_kernelspecs_list_every_provider(server: JupyterServer, e2e_world: JupyterWorld) -> None:
    specs = server.kernelspecs()
    models = specs["kernelspecs"]
    ids = by_type_id(specs)
    # The bridge is what makes these appear: no jupyter config of ours was written.
    assert not any(e2e_world.config_dir.iterdir()), list(e2e_world.config_dir.iterdir())
    for tid in ("pyimport/kernel", REAL_ENV, LISTED_ENV):
        assert tid in ids, f"{tid} missing from /api/kernelspecs: {sorted(models)}"
    # spec/NAME keeps NAME: the venv's ipykernel spec and the installed echo wrapper kernel.
    for name in ("python3", "echo"):
        assert name in models, sorted(models)
        assert type_id_of(models[name]) == f"spec/{name}", models[name]
    # Same argv as the kernel.json folder it came from.
    echo_json = (e2e_world.data_dir / "kernels" / "echo" / "kernel.json").read_text()
    assert models["echo"]["spec"]["argv"] == json.loads(echo_json)["argv"]
    assert models["echo"]["spec"]["display_name"] == "Echo"
    # Every name is one jupyter_server's URLs accept; the default names a listed kernel.
    for name in models:
        assert URL_NAME.match(name), name
    assert specs["default"] in models
    # Environments are told apart in the launcher.
    real = models[ids[REAL_ENV]]["spec"]["display_name"]
    listed = models[ids[LISTED_ENV]]["spec"]["display_name"]
    assert real != listed
    assert "realenv" in real and "listedenv" in listed, (real, listed)
    for tid in (REAL_ENV, LISTED_ENV, "pyimport/kernel"):
        model = models[ids[tid]]
        assert model["spec"]["language"] == "python"
        assert model["spec"]["metadata"]["kernel_provisioner"]["provisioner_name"] == "kernel-mgmt"


def test_single_kernelspec_endpoint(server: JupyterServer) -> None:
    """``/api/kernelspecs/<name>`` (what the launcher and notebooks ask for) answers for a
    provider's kernel by its listed name, and 404s for an unknown name."""
    name = name_for(server, REAL_ENV)
    model = server.ok("GET", f"/api/kernelspecs/{name}")
    assert model["name"] == name
    assert type_id_of(model) == REAL_ENV
    status, _ = server.request("GET", "/api/kernelspecs/no-such-kernel-e2e")
    assert status == 404


# ---------------------------------------------------------------------------------------------
# Running kernels through the server


@pytest.mark.parametrize("type_id", [REAL_ENV, LISTED_ENV])
def test_conda_kernel_runs_in_its_environment(
    server: JupyterServer, e2e_world: JupyterWorld, type_id: str
) -> None:
    env = type_id.split("/", 1)[1].rsplit("-", 1)[0]
    with running_kernel(server, name_for(server, type_id)) as (_, ch):
        r = ch.execute("import sys; print(sys.prefix)")
        assert r.reply["status"] == "ok", r
        assert Path(r.stdout.strip()).resolve() == e2e_world.env_prefix(env).resolve()


def test_nb_conda_kernels_name_starts_the_same_environment(
    server: JupyterServer, e2e_world: JupyterWorld
) -> None:
    """A notebook saved under nb_conda_kernels (``kernelspec.name: conda-env-realenv-py``)
    asks the server for that name: it starts the realenv environment's kernel."""
    model = server.ok("GET", "/api/kernelspecs/conda-env-realenv-py")
    assert type_id_of(model) == REAL_ENV, model
    with running_kernel(server, "conda-env-realenv-py") as (_, ch):
        r = ch.execute("import sys; print(sys.prefix)")
        assert r.reply["status"] == "ok", r
        assert Path(r.stdout.strip()).resolve() == e2e_world.env_prefix("realenv").resolve()


def test_wrapper_and_pyimport_kernels_run(server: JupyterServer) -> None:
    with running_kernel(server, "echo") as (_, ch):
        r = ch.execute("parrot says hi")
        assert r.reply["status"] == "ok" and r.stdout == "parrot says hi", r
    with running_kernel(server, name_for(server, "pyimport/kernel")) as (_, ch):
        r = ch.execute("import sys; print(sys.executable)")
        assert r.reply["status"] == "ok", r
        assert Path(r.stdout.strip()).parent == Path(sys.executable).parent


def test_spec_kernel_opens_as_before(server: JupyterServer) -> None:
    """A notebook saved with ``kernelspec.name: python3`` starts the same ipykernel."""
    with running_kernel(server, "python3") as (kernel_id, ch):
        r = ch.execute("import sys; print(sys.executable)")
        assert r.reply["status"] == "ok", r
        assert Path(r.stdout.strip()).parent == Path(sys.executable).parent
        assert server.ok("GET", f"/api/kernels/{kernel_id}")["name"] == "python3"


@pytest.mark.parametrize("type_id", [REAL_ENV, "spec/pymsg"], ids=["signal", "message"])
def test_interrupt_through_rest(server: JupyterServer, type_id: str) -> None:
    """POST .../interrupt stops a running cell in both interrupt modes (a conda kernel's
    SIGINT; a kernelspec with ``interrupt_mode: message``) and the kernel lives on."""
    model = server.ok("GET", f"/api/kernelspecs/{name_for(server, type_id)}")
    assert model["spec"]["interrupt_mode"] == ("message" if type_id == "spec/pymsg" else "signal")
    with running_kernel(server, name_for(server, type_id)) as (kernel_id, ch):
        interrupted: list[int] = []

        def interrupt() -> None:
            server.ok("POST", f"/api/kernels/{kernel_id}/interrupt")
            interrupted.append(1)

        r = ch.execute(
            "import time; print('sleeping', flush=True); time.sleep(30); print('woke')",
            started_marker="sleeping",
            on_started=interrupt,
        )
        assert interrupted, r
        assert r.reply["status"] == "error", r
        assert r.reply["ename"] == "KeyboardInterrupt", r
        assert "woke" not in r.stdout
        after = ch.execute("print(6 * 7)")
        assert after.reply["status"] == "ok" and after.stdout.strip() == "42", after
        assert server.ok("GET", f"/api/kernels/{kernel_id}")["execution_state"] != "dead"


def test_restart_through_rest(server: JupyterServer) -> None:
    """POST .../restart keeps the id; a client reconnecting afterwards (as JupyterLab's
    KernelConnection.restart does) gets a fresh process in the same environment."""
    with running_kernel(server, name_for(server, REAL_ENV)) as (kernel_id, ch):
        before = pid_of(ch)
        assert ch.execute("marker = 'set before restart'").reply["status"] == "ok"
        model = server.ok("POST", f"/api/kernels/{kernel_id}/restart")
        assert model["id"] == kernel_id
        wait_until(lambda: not _pid_alive(before), 30, "the old kernel process to end")
        with server.channels(kernel_id) as again:
            again.kernel_info()
            after = pid_of(again)
            assert after != before
            r = again.execute("print(marker)")
            assert r.reply["status"] == "error" and r.reply["ename"] == "NameError", r
            r = again.execute("import sys; print(sys.prefix)")
            assert Path(r.stdout.strip()).name == "realenv", r
        assert [k["id"] for k in server.ok("GET", "/api/kernels")].count(kernel_id) == 1


def test_delete_leaves_no_process_and_no_connection_file(server: JupyterServer) -> None:
    runtime_before = server.runtime_files()
    children_before = {p.pid for p in server.children()}
    name = name_for(server, REAL_ENV)
    kernel_id = server.start_kernel(name)
    with server.channels(kernel_id) as ch:
        ch.kernel_info()
        r = ch.execute(
            "import os\nfrom ipykernel import get_connection_file\n"
            "print(os.getpid()); print(get_connection_file())"
        )
        assert r.reply["status"] == "ok", r
        pid_line, cf_line = r.stdout.split()
        pid, connection_file = int(pid_line), Path(cf_line)
    assert connection_file.exists()
    started = [p for p in server.children() if p.pid not in children_before]
    assert pid in {p.pid for p in started}, "the kernel is the server's descendant"
    server.ok("DELETE", f"/api/kernels/{kernel_id}")
    wait_until(
        lambda: not any(process_alive(p) for p in started), 30, "the kernel's processes to end"
    )
    assert not connection_file.exists()
    assert server.runtime_files() - runtime_before == set()
    status, _ = server.request("GET", f"/api/kernels/{kernel_id}")
    assert status == 404


def wait_restarting(ch: Any) -> None:
    """jupyter_server's restarter saw the death (provisioner poll) and restarted the kernel:
    it tells the open channels websocket "restarting" on IOPub."""
    ch.wait_for(
        lambda m: (
            m.get("msg_type") == "status"
            and m.get("content", {}).get("execution_state") == "restarting"
        ),
        90,
        "the server's 'restarting' status after the kernel was killed",
    )


def test_kernel_death_is_restarted_by_the_server(server: JupyterServer) -> None:
    """Kill the kernel: the server's restarter brings it back under the same id; a client
    reconnecting on "restarting" (as JupyterLab does) runs code on the new process."""
    with running_kernel(server, name_for(server, REAL_ENV)) as (kernel_id, ch):
        pid = pid_of(ch)
        os.kill(pid, signal.SIGKILL)
        wait_restarting(ch)
        model = server.ok("GET", f"/api/kernels/{kernel_id}")
        assert model["id"] == kernel_id and model["execution_state"] != "dead", model
        with server.channels(kernel_id) as again:
            again.kernel_info()
            new_pid = pid_of(again)
            assert new_pid != pid
            r = again.execute("import sys; print(sys.prefix)")
            assert Path(r.stdout.strip()).name == "realenv", r


@pytest.mark.parametrize("how", ["rest-restart", "kernel-death"])
def test_open_channels_keep_working_across_a_restart(server: JupyterServer, how: str) -> None:
    """As with jupyter_client's local provisioner (ports and key kept on restart), a channels
    websocket opened before the restart still runs code after it, without reconnecting.
    ``python3`` (spec/python3) launches through the kernel-mgmt provisioner; the stock
    server passes this same test (``test_stock_open_channels_keep_working``)."""
    check_open_channels_survive(server, "python3", how)


@pytest.fixture(scope="module")
def stock_server(e2e_world: JupyterWorld) -> Any:
    """The peer: the same world, the bridge turned off by naming jupyter_client's manager."""
    s = JupyterServer(
        e2e_world,
        args=("--ServerApp.kernel_spec_manager_class=jupyter_client.kernelspec.KernelSpecManager",),
    ).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.parametrize("how", ["rest-restart", "kernel-death"])
def test_stock_open_channels_keep_working(stock_server: JupyterServer, how: str) -> None:
    assert by_type_id(stock_server.kernelspecs()) == {}, "the bridge is off in the peer"
    check_open_channels_survive(stock_server, "python3", how)


def check_open_channels_survive(server: JupyterServer, name: str, how: str) -> None:
    with running_kernel(server, name) as (kernel_id, ch):
        pid = pid_of(ch)
        if how == "rest-restart":
            server.ok("POST", f"/api/kernels/{kernel_id}/restart")
        else:
            os.kill(pid, signal.SIGKILL)
            wait_restarting(ch)
        new_pid = wait_until(lambda: _try_pid(ch), 30, f"the same websocket to run code ({how})")
        assert new_pid != pid


def _pid_alive(pid: int) -> bool:
    try:
        return process_alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def _try_pid(ch: Any) -> int | None:
    try:
        r = ch.execute(PID, timeout=10)
    except AssertionError:
        return None
    return int(r.stdout.split()[-1]) if r.reply.get("status") == "ok" else None


def test_turned_off_for_one_user(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The package README's off switch for one user (jpserver_extensions false in the user's
    jupyter_server_config.json): the server lists kernelspec folders only, as stock does."""
    require_bridge()
    w = JupyterWorld(tmp_path_factory.mktemp("off-world"))
    w.make_conda(real=(), folders_only=("fakeenv",))
    (w.config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"kernel_mgmt_jupyter": False}}})
    )
    s = JupyterServer(w).start()
    try:
        specs = s.kernelspecs()
        assert by_type_id(specs) == {}, sorted(specs["kernelspecs"])
        assert "python3" in specs["kernelspecs"]
        displays = [m["spec"]["display_name"] for m in specs["kernelspecs"].values()]
        assert not any("fakeenv" in d for d in displays), displays
    finally:
        s.stop()
    # The same world with the switch removed: the bridge lists the conda env.
    (w.config_dir / "jupyter_server_config.json").unlink()
    s = JupyterServer(w).start()
    try:
        names = by_type_id(s.kernelspecs())
        assert "conda/fakeenv-python3" in names, sorted(names)
    finally:
        s.stop()


# ---------------------------------------------------------------------------------------------
# A broken provider costs the listing nothing but its own kernels

BROKEN_MODULE = """
import os
import time

from kernel_mgmt.discovery import KernelProviderBase


class Raising(KernelProviderBase):
    id = "e2e-raise"

    def find_kernels(self):
        raise RuntimeError("e2e: cannot reach the cluster")

    async def launch(self, name, cwd=None, launch_params=None):
        raise RuntimeError("e2e: never listed")


class Hanging(KernelProviderBase):
    id = "e2e-hang"

    def find_kernels(self):
        # Says it has started, then hangs until the test releases it (bounded).
        open(os.environ["E2E_HANG_STARTED"], "a").close()
        deadline = time.monotonic() + 120
        while not os.path.exists(os.environ["E2E_HANG_RELEASE"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        open(os.environ["E2E_HANG_DONE"], "a").close()
        yield "late", {"display_name": "Too late", "language": "python"}

    async def launch(self, name, cwd=None, launch_params=None):
        raise RuntimeError("e2e: not launched in this test")
"""


def install_broken_providers(folder: Path) -> None:
    """A distribution of two broken providers as a plain dist-info on PYTHONPATH."""
    info = folder / "km_e2e_broken-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: km-e2e-broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[kernel_mgmt]\ne2e-raise = km_e2e_broken:Raising\ne2e-hang = km_e2e_broken:Hanging\n"
    )
    (folder / "km_e2e_broken.py").write_text(BROKEN_MODULE)


@pytest.fixture(scope="module")
def broken_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    require_bridge()
    w = JupyterWorld(tmp_path_factory.mktemp("broken-world"))
    w.make_conda(real=("realenv",))
    site = w.root / "site"
    install_broken_providers(site)
    w.pythonpath.append(str(site))
    w.extra_env.update(
        E2E_HANG_STARTED=str(w.root / "hang-started"),
        E2E_HANG_RELEASE=str(w.root / "hang-release"),
        E2E_HANG_DONE=str(w.root / "hang-done"),
    )
    # kernel_mgmt's own timeout for the hanging provider is longer than the test keeps it
    # hung, so that its answer, once released, is used.
    w.kernel_mgmt_config("[providers.timeouts]\ne2e-hang = 100\n")
    s = JupyterServer(w).start()
    try:
        yield s
    finally:
        (w.root / "hang-release").touch()
        s.stop()


def test_broken_providers_leave_the_others_listed(broken_server: JupyterServer) -> None:
    """A provider that raises and one that hangs (until released) cost the listing only
    their own kernels: the listing returns while the hanging one still runs, the server keeps
    answering, and the hung provider's kernels appear on a later listing once it answers."""
    world = broken_server.world
    started, release = world.root / "hang-started", world.root / "hang-release"
    result: dict[str, Any] = {}

    def listing() -> None:
        result["specs"] = broken_server.kernelspecs()

    t = threading.Thread(target=listing, daemon=True)
    t.start()
    wait_until(started.exists, 90, "the hanging provider to be called")
    status, _ = broken_server.request("GET", "/api/status", timeout=60)
    assert status == 200, "the server answers while a provider hangs"
    t.join(timeout=120)
    assert not t.is_alive(), "the listing waited for the hanging provider"
    assert not (world.root / "hang-done").exists(), "the listing waited for the provider"
    for specs in (result["specs"], broken_server.kernelspecs()):
        ids = by_type_id(specs)
        assert REAL_ENV in ids and "pyimport/kernel" in ids, sorted(ids)
        assert "python3" in specs["kernelspecs"]
        assert not any(t.startswith(("e2e-raise/", "e2e-hang/")) for t in ids), sorted(ids)
    # The server's log says which provider failed and why.
    log = broken_server.log_path.read_text(errors="replace")
    assert "e2e-raise" in log and "cannot reach the cluster" in log, broken_server.log_tail()
    # The server still starts the good kernels while the provider hangs.
    with running_kernel(broken_server, ids[REAL_ENV]) as (_, ch):
        r = ch.execute("import sys; print(sys.prefix)")
        assert Path(r.stdout.strip()).name == "realenv", r
    release.touch()
    wait_until(
        lambda: "e2e-hang/late" in by_type_id(broken_server.kernelspecs()),
        60,
        "the released provider's kernel on a later listing",
    )
    assert not any(t.startswith("e2e-raise/") for t in by_type_id(broken_server.kernelspecs()))
