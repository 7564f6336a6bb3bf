"""The bridge's README examples (root "Use with Jupyter" and the package README), run for real."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpec
from traitlets.config import Config

from kernel_mgmt_jupyter import KernelFinderSpecManager, KernelMgmtProvisioner
from kernel_mgmt_jupyter.names import conda_aliases, jupyter_name, type_id_for
from kernel_mgmt_jupyter.table import build_table

from .conftest import World

ROOT = Path(__file__).resolve().parents[2]
ROOT_README = (ROOT / "README.md").read_text()
PKG_README = (ROOT / "packages" / "jupyter-bridge" / "README.md").read_text()
BIN = Path(sys.executable).parent
#: Commands the README shows but a test cannot run here (they install or serve).
NOT_RUN = ("pip install", "jupyter lab")


def _block(text: str, marker: str, lang: str) -> str:
    match = re.search(rf"<!-- jupyter-bridge: {marker} -->\s*```{lang}\n(.*?)```", text, re.S)
    assert match, f"README has no {lang} block after <!-- jupyter-bridge: {marker} -->"
    return match.group(1)


def _commands(block: str) -> list[list[str]]:
    lines = [
        line[2:].split("  #")[0].strip() for line in block.splitlines() if line.startswith("$ ")
    ]
    return [shlex.split(line) for line in lines]


def _run(world: World, argv: list[str]) -> subprocess.CompletedProcess[str]:
    exe = BIN / argv[0]
    proc = subprocess.run(
        [str(exe) if exe.exists() else argv[0], *argv[1:]],
        env=world.env(),
        cwd=world.tmp,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, f"{shlex.join(argv)}:\n{proc.stdout}{proc.stderr}"
    return proc


def test_root_readme_commands_run(world: World, with_conda: Path) -> None:
    commands = _commands(_block(ROOT_README, "install", "console"))
    ran = 0
    for argv in commands:
        if shlex.join(argv).startswith(NOT_RUN):
            continue
        out = _run(world, argv).stdout
        ran += 1
        if argv[1:] == ["status"]:
            assert "bridge active" in out
        if argv[1:] == ["list"]:
            assert "conda-env-ml-py" in out and "Python 3 [conda env:ml]" in out
    assert ran == 2


def test_package_readme_status_commands_run(world: World) -> None:
    for argv in _commands(_block(PKG_README, "status", "console")):
        out = _run(world, argv).stdout
        if "--json" in argv:
            assert json.loads(out)["jupyter_server"]["active"] is True


def _names_table() -> list[tuple[str, str, str]]:
    section = PKG_README[PKG_README.index("| kernel type id |") :]
    rows = []
    for line in section.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append((cells[0].strip("`"), cells[1].strip("`"), cells[2]))
    return rows


def test_the_names_table_is_what_the_code_does() -> None:
    """Each row, listed alone: the name the spec manager lists, the aliases it answers to,
    and the way back to the type id (the listing; type_id_for for canonical names)."""
    rows = _names_table()
    assert len(rows) >= 5
    for type_id, name, also in rows:
        aliases = re.findall(r"`([^`]+)`", also)
        attrs: dict = {"display_name": "Py", "language": "python", "argv": ["x"]}
        if type_id.startswith("conda/"):
            env, _, kernel = type_id.partition("/")[2].rpartition("-")
            is_base = env == "base"
            prefix = "/opt/conda" if is_base else f"/opt/conda/envs/{env}"
            conda = {
                "env_name": env,
                "env_prefix": prefix,
                "is_base": is_base,
                "kernelspec": kernel,
                "root_prefix": "/opt/conda",
            }
            attrs = {**attrs, "metadata": {"conda": conda}}
        table = build_table([(type_id, attrs)])
        assert table.by_type[type_id] == name
        assert table.lookup(name).type_id == type_id
        assert [table.lookup(a).type_id for a in aliases] == [type_id] * len(aliases)
        if type_id.startswith("conda/"):
            # Listed under nb_conda_kernels' name; the canonical name is the first alias.
            assert [name, *aliases[1:]] == conda_aliases(attrs)
            assert aliases[0] == jupyter_name(type_id)
            assert type_id_for(aliases[0]) == type_id
            assert table.own_aliases[name] == aliases
        else:
            assert jupyter_name(type_id) == name
            assert type_id_for(name) == type_id
            if type_id != "pyimport/kernel":
                assert aliases == []


def test_the_config_example_sets_launch_params(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config(json.loads(_block(PKG_README, "config", "json")))
    assert KernelFinderSpecManager(config=config).provider_wait == 5
    schema = {
        "type": "object",
        "properties": {"executors": {"type": "integer"}, "queue": {"type": "string"}},
    }
    spec = KernelSpec(name="gateway__spark_5fpython", metadata={"launch_parameter_schema": schema})
    provisioner = KernelMgmtProvisioner(
        config=config, kernel_spec=spec, type_id="gateway/spark_python"
    )
    assert provisioner._resolve_params({}, None) == {"executors": 4, "queue": "batch"}
    # KERNEL_EXECUTORS=8, as the README says, is read as the schema's integer.
    got = provisioner._resolve_params({"KERNEL_EXECUTORS": "8"}, None)
    assert got == {"executors": 8, "queue": "batch"}
    assert provisioner._resolve_params({}, {"queue": "now"}) == {"executors": 4, "queue": "now"}


def test_the_sync_commands_run_papermill_and_jupyter_execute_on_the_conda_env(
    world: World, with_conda: Path
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    nbformat.write(nb, world.tmp / "analysis.ipynb")
    commands = _commands(_block(PKG_README, "sync", "console"))
    assert [c[0] for c in commands] == ["kernel-mgmt-jupyter"] * 2 + ["papermill", "jupyter"]
    for argv in commands:
        out = _run(world, argv).stdout
        if "--json" in argv:
            assert {a["action"] for a in json.loads(out)["actions"]} == {"unchanged"}
    done = nbformat.read(world.tmp / "out.ipynb", as_version=4)
    printed = done.cells[0].outputs[0]["text"].strip()
    assert os.path.samefile(printed, with_conda)
    assert world.connection_files() == []


def test_the_python_example_runs(world: World) -> None:
    code = _block(PKG_README, "python", "python")
    proc = subprocess.run(
        [sys.executable, "-c", code], env=world.env(), capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    assert "42" in proc.stdout.split()
    assert world.connection_files() == []


OFF = '{"ServerApp": {"jpserver_extensions": {"kernel_mgmt_jupyter": false}}}'


def test_the_turn_it_off_setting_turns_it_off(world: World) -> None:
    assert OFF in ROOT_README.replace("\n  ", " ")
    assert OFF in PKG_README
    (world.config / "jupyter_server_config.json").write_text(OFF)
    status = json.loads(_run(world, ["kernel-mgmt-jupyter", "status", "--json"]).stdout)
    assert status["jupyter_server"]["active"] is False
