"""KernelFinderSpecManager: every provider's kernel types as kernelspecs, never blocking."""

from __future__ import annotations

import asyncio
import inspect
import sys
import textwrap
import threading
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

import kernel_mgmt_jupyter.finders as bridge_finders
from kernel_mgmt_jupyter import KernelFinderSpecManager
from kernel_mgmt_jupyter.finders import Finders

from .conftest import World, ipykernel_spec, write_spec


def _type_id(model: dict) -> str:
    return model["spec"]["metadata"]["kernel_provisioner"]["config"]["type_id"]


async def test_lists_every_provider_as_kernelspecs_naming_the_provisioner(
    world: World, with_conda: Path
) -> None:
    write_spec(world.kernels, "echo", ipykernel_spec("Echo"))
    ksm = KernelFinderSpecManager()
    specs_call = ksm.get_all_specs()
    assert inspect.iscoroutine(specs_call)  # jupyter_server awaits it (ensure_async)
    specs = await specs_call
    by_type = {_type_id(m): name for name, m in specs.items()}
    assert by_type["spec/echo"] == "echo"
    assert by_type["spec/python3"] == "python3"
    assert by_type["pyimport/kernel"] == "pyimport__kernel"
    assert by_type["conda/ml-python3"] == "conda-env-ml-py"
    conda = specs["conda-env-ml-py"]
    assert conda["spec"]["display_name"] == "Python 3 [conda env:ml]"
    assert conda["spec"]["metadata"]["kernel_provisioner"]["provisioner_name"] == "kernel-mgmt"
    assert conda["spec"]["metadata"]["kernel_mgmt"] == {
        "type_id": "conda/ml-python3",
        "provider": "conda",
    }
    assert conda["spec"]["metadata"]["conda_env_path"] == str(with_conda)
    assert Path(conda["resource_dir"]).is_dir()
    # Without a server parent the values are jupyter_client's {resource_dir, spec} form.
    assert set(conda) == {"resource_dir", "spec"}


async def test_spec_kernels_keep_argv_env_and_interrupt_mode(world: World) -> None:
    spec = ipykernel_spec("Msg", interrupt_mode="message", env={"A": "1", "P": "${PATH}:x"})
    folder = write_spec(world.kernels, "msgk", spec)
    ksm = KernelFinderSpecManager()
    ours = ksm.get_kernel_spec("msgk")
    stock = KernelSpecManager().get_kernel_spec("msgk")
    for key in ("argv", "env", "interrupt_mode", "display_name", "language"):
        assert getattr(ours, key) == getattr(stock, key), key
    assert ours.resource_dir == str(folder) == stock.resource_dir
    assert ours.metadata["kernel_provisioner"]["config"]["type_id"] == "spec/msgk"


async def test_a_kernelspec_naming_another_provisioner_keeps_it(world: World) -> None:
    spec = ipykernel_spec(
        metadata={"kernel_provisioner": {"provisioner_name": "local-provisioner"}}
    )
    write_spec(world.kernels, "theirs", spec)
    got = KernelFinderSpecManager().get_kernel_spec("theirs")
    assert got.metadata["kernel_provisioner"] == {"provisioner_name": "local-provisioner"}


def test_get_kernel_spec_is_synchronous_and_takes_names_aliases_and_type_ids(
    world: World, with_conda: Path
) -> None:
    ksm = KernelFinderSpecManager()
    for name in ("conda__ml-python3", "CONDA__ML-PYTHON3", "conda-env-ml-py", "conda/ml-python3"):
        spec = ksm.get_kernel_spec(name)  # a KernelSpec, not a coroutine
        assert spec.metadata["kernel_mgmt"]["type_id"] == "conda/ml-python3", name
        assert spec.name == "conda-env-ml-py"
    with pytest.raises(NoSuchKernel):
        ksm.get_kernel_spec("no-such-kernel")
    assert ksm.type_id("conda-env-ml-py") == "conda/ml-python3"
    assert "conda-env-ml-py" in ksm.find_kernel_specs()


async def test_models_for_jupyter_server_carry_resources(world: World) -> None:
    folder = write_spec(world.kernels, "logo", ipykernel_spec())
    (folder / "logo-64x64.png").write_bytes(b"\x89PNG")
    (folder / "kernel.js").write_text("// js")
    from jupyter_server.serverapp import ServerApp

    ksm = KernelFinderSpecManager(parent=ServerApp(base_url="/base/"))
    model = (await ksm.get_all_specs())["logo"]
    assert model["name"] == "logo"
    assert model["resources"] == {
        "kernel.js": "/base/kernelspecs/logo/kernel.js",
        "logo-64x64": "/base/kernelspecs/logo/logo-64x64.png",
    }
    (folder / "logo-svg.svg").write_text("<svg/>")  # seen: the folder's mtime changed
    model = (await ksm.get_all_specs())["logo"]
    assert "logo-svg" in model["resources"]


async def test_unchanged_types_reuse_their_entries(world: World) -> None:
    write_spec(world.kernels, "k1", ipykernel_spec())
    ksm = KernelFinderSpecManager()
    await ksm.get_all_specs()
    first = ksm._table.entries["k1"]
    await ksm.get_all_specs()
    assert ksm._table.entries["k1"] is first
    write_spec(world.kernels, "k1", ipykernel_spec("Changed"))
    specs = await ksm.get_all_specs()
    assert specs["k1"]["spec"]["display_name"] == "Changed"


async def test_allowed_kernelspecs_limits_the_listing(world: World) -> None:
    write_spec(world.kernels, "k1", ipykernel_spec())
    ksm = KernelFinderSpecManager(allowed_kernelspecs={"k1"})
    assert set(await ksm.get_all_specs()) == {"k1"}
    with pytest.raises(NoSuchKernel):
        ksm.get_kernel_spec("python3")


async def test_python3_means_pyimport_when_no_folder_has_it(world: World) -> None:
    eps = [EntryPoint("pyimport", "kernel_mgmt_provider_pyimport", "kernel_mgmt")]
    bridge_finders.reset_shared(Finders({}, entry_points=eps))
    ksm = KernelFinderSpecManager()
    assert set(await ksm.get_all_specs()) == {"pyimport__kernel"}
    assert ksm.get_kernel_spec("python3").name == "pyimport__kernel"


PROVIDERS = """
import threading
from kernel_mgmt.hookspecs import hookimpl

RELEASE = threading.Event()

class Broken:
    @hookimpl
    def find_kernels(self):
        raise RuntimeError("this provider is broken")

class Hanging:
    @hookimpl
    def find_kernels(self):
        RELEASE.wait(60)
        yield "late", {"display_name": "Late", "language": "python", "argv": ["x"]}

broken = Broken()
hanging = Hanging()
"""


@pytest.fixture
def bad_providers(world: World, monkeypatch: pytest.MonkeyPatch) -> object:
    """A broken and a hanging provider beside the real spec provider."""
    (world.tmp / "bad_providers_mod.py").write_text(textwrap.dedent(PROVIDERS))
    monkeypatch.syspath_prepend(str(world.tmp))
    import bad_providers_mod

    eps = [
        EntryPoint("spec", "kernel_mgmt_provider_spec", "kernel_mgmt"),
        EntryPoint("broken", "bad_providers_mod:broken", "kernel_mgmt"),
        EntryPoint("hanging", "bad_providers_mod:hanging", "kernel_mgmt"),
    ]
    bridge_finders.reset_shared(Finders({}, entry_points=eps))
    yield bad_providers_mod
    bad_providers_mod.RELEASE.set()
    sys.modules.pop("bad_providers_mod", None)


async def test_a_broken_or_hanging_provider_costs_only_its_own_kernels(
    world: World, bad_providers: object
) -> None:
    write_spec(world.kernels, "k1", ipykernel_spec())
    ksm = KernelFinderSpecManager(provider_wait=0.5)
    specs = await ksm.get_all_specs()
    # The hanging provider is still inside find_kernels (it waits for RELEASE): the listing
    # came back without it, with every other provider's kernels.
    assert not bad_providers.RELEASE.is_set()
    assert "k1" in specs and "python3" in specs
    assert not any(n.startswith(("broken__", "hanging__")) for n in specs)
    bad_providers.RELEASE.set()
    for _ in range(200):  # its call ends, and a later listing shows its kernel
        specs = await ksm.get_all_specs()
        if "hanging__late" in specs:
            break
        await asyncio.sleep(0.05)
    assert "hanging__late" in specs
    problems = " ".join(str(p) for p in bridge_finders.shared().problems())
    assert "this provider is broken" in problems


async def test_listing_does_not_block_the_event_loop(world: World, bad_providers: object) -> None:
    ticks = 0
    stop = threading.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.ensure_future(ticker())
    await KernelFinderSpecManager(provider_wait=0.5).get_all_specs()  # waits for "hanging"
    stop.set()
    await task
    assert ticks > 1  # the loop kept running while the hanging provider was awaited


async def test_a_synced_folder_is_not_listed_twice(world: World, with_conda: Path) -> None:
    from kernel_mgmt.discovery import KernelFinder
    from kernel_mgmt_jupyter.sync import sync

    ksm = KernelFinderSpecManager()
    specs = await ksm.get_all_specs()
    sync(str(world.kernels), list(KernelFinder.from_entrypoints().find_kernels()))
    assert (world.kernels / "conda__ml-python3" / "kernel.json").is_file()
    assert (world.kernels / "conda-env-ml-py" / "kernel.json").is_file()
    again = await ksm.get_all_specs()
    assert set(again) == set(specs)
    assert _type_id(again["conda-env-ml-py"]) == "conda/ml-python3"
    assert again["conda-env-ml-py"]["resource_dir"] != str(world.kernels / "conda-env-ml-py")
    # Nor does kernel-mgmt itself: the spec provider leaves synced folders to their provider.
    type_ids = [t for t, _ in KernelFinder.from_entrypoints().find_kernels()]
    assert "conda/ml-python3" in type_ids
    assert not any(t.startswith(("spec/conda__", "spec/conda-env-")) for t in type_ids)
    # jupyter_client's own manager lists the folders (for nbclient, papermill...).
    assert {"conda__ml-python3", "conda-env-ml-py"} <= set(KernelSpecManager().find_kernel_specs())


def test_synced_folders_in_a_listing_are_skipped_or_stand_for_their_gone_type() -> None:
    from kernel_mgmt_jupyter.table import build_table

    def synced(target: str, **extra: object) -> dict:
        mark = {"type_id": target, "provider": "conda", "synced": True, **extra}
        stanza = {"provisioner_name": "kernel-mgmt", "config": {"type_id": target}}
        return ipykernel_spec(metadata={"kernel_mgmt": mark, "kernel_provisioner": stanza})

    live = ("conda/ml-python3", ipykernel_spec("Live"))
    records = [
        ("spec/conda__ml-python3", synced("conda/ml-python3")),
        ("spec/conda__gone-python3", synced("conda/gone-python3")),
        ("spec/conda-env-gone-py", synced("conda/gone-python3", alias_of="conda__gone-python3")),
        live,
    ]
    table = build_table(records)
    assert set(table.entries) == {"conda__ml-python3", "conda__gone-python3"}
    assert table.entries["conda__ml-python3"].spec["display_name"] == "Live"
    gone = table.entries["conda__gone-python3"]
    assert gone.type_id == "conda/gone-python3"
    assert gone.spec["metadata"]["kernel_provisioner"]["config"]["type_id"] == "conda/gone-python3"
    assert table.lookup("conda-env-gone-py") is gone


async def test_aliases_can_be_listed_for_jupyterlab(world: World, with_conda: Path) -> None:
    from jupyter_server.serverapp import ServerApp

    assert "conda__ml-python3" not in await KernelFinderSpecManager().get_all_specs()
    ksm = KernelFinderSpecManager(list_aliases=True, parent=ServerApp(base_url="/"))
    specs = await ksm.get_all_specs()
    alias = specs["conda__ml-python3"]
    assert alias["name"] == "conda__ml-python3"
    assert alias["spec"] == specs["conda-env-ml-py"]["spec"]
    assert _type_id(alias) == "conda/ml-python3"


async def test_a_bad_kernel_mgmt_config_falls_back_to_the_folders(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bad = world.tmp / "config.toml"
    bad.write_text("[providers\nthis is not toml")
    monkeypatch.setenv("KERNEL_MGMT_CONFIG", str(bad))
    write_spec(world.kernels, "k1", ipykernel_spec())
    ksm = KernelFinderSpecManager()
    specs = await ksm.get_all_specs()
    assert "k1" in specs and "python3" in specs  # what jupyter_client lists by itself
    assert ksm.get_kernel_spec("k1").display_name == "Python 3"
    assert str(bad) in caplog.text and "only kernelspec folders" in caplog.text


def test_a_hanging_provider_is_waited_for_once(world: World, bad_providers: object) -> None:
    finders = bridge_finders.shared()
    first = finders.list_sync(wait=0.2)
    assert "hanging" in first.late
    # A later (blocking) listing does not wait for the call still running, however long
    # it would allow: it comes back while the hanging provider is still inside its hook.
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(finders.list_sync(wait=600)))
    worker.start()
    worker.join(60)  # a guard, not a speed check: waiting for "hanging" would take 600 s
    assert not worker.is_alive() and not bad_providers.RELEASE.is_set()
    assert "hanging" in result[0].late
    bad_providers.RELEASE.set()
