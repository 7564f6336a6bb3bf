"""Tools that read only kernelspec folders run notebooks on synced kernels.

papermill and ``jupyter execute`` (nbclient) use jupyter_client's plain KernelSpecManager:
after ``kernel-mgmt-jupyter sync`` they find the conda environment's kernel under our name
and under nb_conda_kernels' name, and start it through the kernel-mgmt provisioner.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from .conftest import World, make_real_env

BIN = Path(sys.executable).parent
CODE = "import sys; print(sys.prefix)"


def _notebook(path: Path, kernel_name: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel_name, "display_name": "x", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell(CODE))
    nbformat.write(nb, path)
    return path


def _printed(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    outputs = nb.cells[0].outputs
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream").strip()


def _run(world: World, *cmd: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(cmd), env=world.env(), cwd=world.tmp, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def synced(world: World, with_conda: Path) -> Path:
    """``sync --user`` run in this world; returns the conda env's prefix."""
    _run(world, str(BIN / "kernel-mgmt-jupyter"), "sync")
    assert (world.data / "kernels" / "conda-env-ml-py").is_dir()
    return with_conda


@pytest.mark.parametrize("kernel_name", ["conda__ml-python3", "conda-env-ml-py"])
def test_papermill_runs_a_notebook_on_the_synced_conda_kernel(
    world: World, synced: Path, kernel_name: str
) -> None:
    src = _notebook(world.tmp / "in.ipynb", kernel_name)
    out = world.tmp / "out.ipynb"
    _run(world, str(BIN / "papermill"), str(src), str(out))
    assert os.path.samefile(_printed(out), synced)
    assert world.connection_files() == []


@pytest.mark.parametrize("kernel_name", ["conda__ml-python3", "conda-env-ml-py"])
def test_jupyter_execute_runs_a_notebook_on_the_synced_conda_kernel(
    world: World, synced: Path, kernel_name: str
) -> None:
    nb = _notebook(world.tmp / "nb.ipynb", kernel_name)
    _run(world, str(BIN / "jupyter"), "execute", "--inplace", str(nb))
    assert os.path.samefile(_printed(nb), synced)
    assert world.connection_files() == []


def test_nbconvert_executes_with_the_notebooks_nb_conda_name(world: World, synced: Path) -> None:
    nb = _notebook(world.tmp / "saved-by-nb-conda-kernels.ipynb", "conda-env-ml-py")
    _run(
        world,
        str(BIN / "jupyter"),
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--output",
        "done.ipynb",
        str(nb),
    )
    assert os.path.samefile(_printed(world.tmp / "done.ipynb"), synced)


def test_a_synced_kernel_whose_type_is_gone_fails_naming_the_type_and_the_fix(
    world: World, conda_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A second root with an env that we sync, then remove.
    root = tmp_path / "otherroot"
    from .conftest import make_conda_env

    make_conda_env(root)
    make_real_env(root / "envs" / "tmpenv")
    monkeypatch.setenv("MAMBA_ROOT_PREFIX", str(root))
    prefix = world.tmp / "pfx"
    _run(world, str(BIN / "kernel-mgmt-jupyter"), "sync", "--prefix", str(prefix))
    kernels = prefix / "share" / "jupyter" / "kernels"
    assert (kernels / "conda__tmpenv-python3").is_dir()
    shutil.rmtree(root / "envs" / "tmpenv")
    nb = _notebook(world.tmp / "nb.ipynb", "conda__tmpenv-python3")
    env = {**world.env(), "JUPYTER_PATH": f"{prefix / 'share' / 'jupyter'}"}
    proc = subprocess.run(
        [str(BIN / "jupyter"), "execute", str(nb)],
        env=env,
        cwd=world.tmp,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode != 0
    assert "'conda/tmpenv-python3'" in proc.stderr
    assert f"kernel-mgmt-jupyter sync --prefix {prefix} --prune" in proc.stderr
    assert world.connection_files() == []
    spec = json.loads((kernels / "conda__tmpenv-python3" / "kernel.json").read_text())
    assert spec["metadata"]["kernel_mgmt"]["sync_target"] == f"--prefix {prefix}"
