"""kernel-mgmt-jupyter sync: writes, updates, prunes only its own folders, reports in JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kernel_mgmt_jupyter.sync import kernels_dir, sync

from .conftest import World, ipykernel_spec, write_spec

CLI = [sys.executable, "-m", "kernel_mgmt_jupyter.cli"]


def run_cli(world: World, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*CLI, *args], env=world.env(), capture_output=True, text=True, timeout=120
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _conda(env: str, resource_dir: str | None = None, display: str = "Python 3") -> dict:
    attrs: dict[str, Any] = {
        "display_name": f"{display} (conda: {env})",
        "language": "python",
        "argv": [f"/envs/{env}/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "interrupt_mode": "signal",
        "env": {},
        "metadata": {
            "conda": {
                "env_name": env,
                "env_prefix": f"/opt/conda/envs/{env}",
                "is_base": False,
                "kernelspec": "python3",
                "root_prefix": "/opt/conda",
            }
        },
    }
    if resource_dir:
        attrs["resource_dir"] = resource_dir
    return attrs


def _actions(report: Any) -> dict[str, str]:
    return {a.name: a.action for a in report.actions}


def test_writes_updates_and_prunes_its_own_folders(tmp_path: Path) -> None:
    target = tmp_path / "kernels"
    res = tmp_path / "res"
    res.mkdir()
    (res / "logo-64x64.png").write_bytes(b"png")
    records = [
        ("spec/python3", ipykernel_spec()),
        ("conda/ml-python3", _conda("ml", str(res))),
        ("pyimport/kernel", {"display_name": "Py", "language": "python", "argv": ["x"]}),
    ]
    report = sync(str(target), records, flag="--prefix /p")
    assert _actions(report) == {
        "conda__ml-python3": "added",
        "pyimport__kernel": "added",
        "conda-env-ml-py": "added",  # the nb_conda_kernels name
    }
    assert not (target / "python3").exists()  # spec kernels are folders already
    spec = json.loads((target / "conda-env-ml-py" / "kernel.json").read_text())
    assert spec["display_name"] == "Python 3 [conda env:ml]"
    assert spec["metadata"]["kernel_provisioner"] == {
        "provisioner_name": "kernel-mgmt",
        "config": {"type_id": "conda/ml-python3"},
    }
    mark = spec["metadata"]["kernel_mgmt"]
    assert mark["synced"] is True and mark["sync_target"] == "--prefix /p"
    assert (target / "conda-env-ml-py" / "logo-64x64.png").read_bytes() == b"png"
    alias = json.loads((target / "conda__ml-python3" / "kernel.json").read_text())
    assert alias["metadata"]["kernel_mgmt"]["alias_of"] == "conda-env-ml-py"

    assert set(_actions(sync(str(target), records, flag="--prefix /p")).values()) == {"unchanged"}

    records[1] = ("conda/ml-python3", _conda("ml", str(res), display="Python 3.12"))
    (res / "logo-64x64.png").write_bytes(b"new png")
    report = sync(str(target), records, flag="--prefix /p")
    assert _actions(report)["conda-env-ml-py"] == "updated"
    spec = json.loads((target / "conda-env-ml-py" / "kernel.json").read_text())
    assert spec["display_name"] == "Python 3.12 [conda env:ml]"
    assert (target / "conda-env-ml-py" / "logo-64x64.png").read_bytes() == b"new png"

    without_conda = [r for r in records if not r[0].startswith("conda/")]
    report = sync(str(target), without_conda, flag="--prefix /p")
    assert _actions(report)["conda-env-ml-py"] == "kept"  # no --prune: kept, and said so
    assert (target / "conda-env-ml-py").is_dir()
    report = sync(str(target), without_conda, flag="--prefix /p", prune=True)
    assert _actions(report) == {
        "pyimport__kernel": "unchanged",
        "conda__ml-python3": "removed",
        "conda-env-ml-py": "removed",
    }
    assert sorted(p.name for p in target.iterdir()) == ["pyimport__kernel"]


def test_never_touches_a_folder_it_did_not_write(tmp_path: Path) -> None:
    target = tmp_path / "kernels"
    foreign = write_spec(target, "conda__ml-python3", ipykernel_spec("Someone else's"))
    other = write_spec(target, "unrelated", ipykernel_spec("Unrelated"))
    (target / "broken").mkdir()
    (target / "broken" / "kernel.json").write_text("{not json")
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    report = sync(str(target), [("conda/ml-python3", _conda("ml"))], prune=True)
    assert _actions(report)["conda__ml-python3"] == "skipped"
    assert "not ours" in next(a.reason for a in report.actions if a.name == "conda__ml-python3")
    assert {
        p: p.read_bytes() for p in target.rglob("*") if p.is_file() and "env" not in p.parent.name
    } == before
    assert other.is_dir() and foreign.is_dir()


def test_a_failed_provider_is_not_a_removed_one(tmp_path: Path) -> None:
    target = tmp_path / "kernels"
    sync(str(target), [("conda/ml-python3", _conda("ml"))])
    report = sync(str(target), [], prune=True, failed_providers=["conda"])
    assert set(_actions(report).values()) == {"kept"}
    assert all("failed" in a.reason for a in report.actions)
    assert (target / "conda-env-ml-py").is_dir()


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "kernels"
    report = sync(str(target), [("conda/ml-python3", _conda("ml"))], dry_run=True)
    assert _actions(report)["conda-env-ml-py"] == "added"
    assert not target.exists()


def test_target_folders(world: World, tmp_path: Path) -> None:
    assert kernels_dir() == str(world.data / "kernels")
    assert kernels_dir(user=True) == str(world.data / "kernels")
    assert kernels_dir(sys_prefix=True) == str(Path(sys.prefix) / "share" / "jupyter" / "kernels")
    assert kernels_dir(prefix=str(tmp_path)) == str(tmp_path / "share" / "jupyter" / "kernels")
    with pytest.raises(ValueError, match="one of"):
        kernels_dir(user=True, prefix="x")


def test_cli_sync_json_and_text(world: World, with_conda: Path) -> None:
    proc = run_cli(world, "sync", "--prefix", str(world.tmp / "pfx"), "--json")
    report = json.loads(proc.stdout)
    target = world.tmp / "pfx" / "share" / "jupyter" / "kernels"
    assert report["target"] == str(target)
    by_name = {a["name"]: a for a in report["actions"]}
    assert by_name["conda-env-ml-py"]["action"] == "added"
    assert by_name["conda-env-ml-py"]["type_id"] == "conda/ml-python3"
    assert by_name["conda__ml-python3"]["action"] == "added"
    assert by_name["pyimport__kernel"]["action"] == "added"
    assert not any(a["type_id"].startswith("spec/") for a in report["actions"])
    text = run_cli(world, "sync", "--prefix", str(world.tmp / "pfx")).stdout
    assert f"kernelspecs in {target}:" in text
    assert "unchanged conda-env-ml-py (conda/ml-python3)" in text
    # --user (the default) writes into the user's Jupyter data dir.
    run_cli(world, "sync")
    assert (world.data / "kernels" / "conda-env-ml-py" / "kernel.json").is_file()


def test_cli_help_and_usage_errors(world: World) -> None:
    out = run_cli(world, "--help").stdout
    for word in ("sync", "list", "status"):
        assert word in out
    sync_help = run_cli(world, "sync", "--help").stdout
    for flag in ("--user", "--sys-prefix", "--prefix", "--prune", "--json", "--dry-run"):
        assert flag in sync_help
    bad = run_cli(world, "sync", "--user", "--sys-prefix", check=False)
    assert bad.returncode == 2 and "not allowed with" in bad.stderr
    assert run_cli(world, check=False).returncode == 2


def test_cli_reports_an_unwritable_target(world: World, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_cli(world, "sync", "--prefix", str(blocker), check=False)
    if proc.returncode == 0:  # pragma: no cover - only when nothing needed writing
        pytest.fail(proc.stdout)
    assert proc.returncode == 1
    assert "kernel-mgmt-jupyter sync: error:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_list(world: World, with_conda: Path) -> None:
    rows = json.loads(run_cli(world, "list", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["conda-env-ml-py"]["type_id"] == "conda/ml-python3"
    assert by_name["conda-env-ml-py"]["aliases"] == ["conda__ml-python3"]
    assert by_name["conda-env-ml-py"]["display_name"] == "Python 3 [conda env:ml]"
    text = run_cli(world, "list").stdout
    assert text.splitlines()[0].split() == ["NAME", "TYPE", "ID", "DISPLAY", "NAME", "ALIASES"]


def test_cli_remove_takes_away_only_what_sync_wrote(world: World, with_conda: Path) -> None:
    target = world.data / "kernels"
    run_cli(world, "sync")
    mine = write_spec(target, "mine", ipykernel_spec("Mine"))
    report = json.loads(run_cli(world, "sync", "--remove", "--json").stdout)
    removed = {a["name"] for a in report["actions"] if a["action"] == "removed"}
    assert {"conda__ml-python3", "conda-env-ml-py", "pyimport__kernel"} <= removed
    assert all(a["reason"] == "--remove" for a in report["actions"])
    assert sorted(p.name for p in target.iterdir()) == ["mine"]
    assert mine.is_dir()


def _old_scheme_folder(target: Path, name: str, alias_of: str | None = None) -> None:
    """A folder as the previous naming scheme's sync wrote it (ours by its marker)."""
    mark: dict[str, Any] = {
        "type_id": "conda/ml-python3",
        "provider": "conda",
        "synced": True,
        "sync_target": "--user",
    }
    if alias_of:
        mark["alias_of"] = alias_of
    stanza = {"provisioner_name": "kernel-mgmt", "config": {"type_id": "conda/ml-python3"}}
    write_spec(
        target, name, ipykernel_spec(metadata={"kernel_mgmt": mark, "kernel_provisioner": stanza})
    )


def test_folders_of_the_old_naming_scheme_are_updated_to_the_listed_names(tmp_path: Path) -> None:
    target = tmp_path / "kernels"
    _old_scheme_folder(target, "conda__ml-python3")  # was listed
    _old_scheme_folder(target, "conda-env-ml-py", alias_of="conda__ml-python3")  # was an alias
    report = sync(str(target), [("conda/ml-python3", _conda("ml"))])
    assert _actions(report) == {"conda-env-ml-py": "updated", "conda__ml-python3": "updated"}
    listed = json.loads((target / "conda-env-ml-py" / "kernel.json").read_text())
    assert "alias_of" not in listed["metadata"]["kernel_mgmt"]
    assert listed["display_name"] == "Python 3 [conda env:ml]"
    alias = json.loads((target / "conda__ml-python3" / "kernel.json").read_text())
    assert alias["metadata"]["kernel_mgmt"]["alias_of"] == "conda-env-ml-py"
    # Both still start conda/ml-python3 (anything saved with either name opens).
    for spec in (listed, alias):
        assert spec["metadata"]["kernel_provisioner"]["config"]["type_id"] == "conda/ml-python3"
    assert set(_actions(sync(str(target), [("conda/ml-python3", _conda("ml"))])).values()) == {
        "unchanged"
    }
    # Gone: --prune removes both.
    report = sync(str(target), [], prune=True)
    assert _actions(report) == {"conda-env-ml-py": "removed", "conda__ml-python3": "removed"}


def test_sync_names_folders_as_the_listing_does_when_a_kernelspec_has_the_name(
    tmp_path: Path,
) -> None:
    target = tmp_path / "kernels"
    theirs = ("spec/conda-env-ml-py", ipykernel_spec("A kernelspec of that name"))
    report = sync(str(target), [theirs, ("conda/ml-python3", _conda("ml"))])
    # The kernelspec keeps its name; the conda kernel is listed (and synced) canonically.
    assert _actions(report) == {"conda__ml-python3": "added"}
    spec = json.loads((target / "conda__ml-python3" / "kernel.json").read_text())
    assert "alias_of" not in spec["metadata"]["kernel_mgmt"]
