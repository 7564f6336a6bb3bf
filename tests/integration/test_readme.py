"""The README's quick start, command lines and high-level example, run for real."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def _block_after(marker: str, lang: str) -> str:
    match = re.search(rf"<!-- {re.escape(marker)} -->\s*```{lang}\n(.*?)```", README, re.S)
    assert match, f"README.md has no {lang} block after <!-- {marker} -->"
    return match.group(1)


@pytest.fixture
def kernel_env(tmp_path: Path) -> dict[str, str]:
    """A private Jupyter path with one python3 kernelspec, and a private runtime dir."""
    spec_dir = tmp_path / "jp" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Python 3", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "JUPYTER_PATH": str(tmp_path / "jp"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "KERNEL_MGMT_PROVIDERS": "spec,pyimport",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }


def _leftovers(env: dict[str, str]) -> list[str]:
    """Connection files left in the runtime dir, and kernel processes still running from it
    (kernels run in their own sessions, so they are found by the runtime dir in their argv)."""
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    left = sorted(p.name for p in runtime.glob("kernel-*")) if runtime.exists() else []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(runtime) in part for part in proc.info["cmdline"] or []):
            left.append(f"process {proc.pid}: {' '.join(proc.info['cmdline'])}")
    return left


def test_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    quick = README[README.index("## Quick start") : README.index("## The packages")]
    commands = re.findall(r"^\$ (.+?)\s+#", quick, re.M)
    assert commands == ["bash scripts/quickstart.sh", "bash scripts/test.sh"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci
    assert "bash scripts/demo.sh" in (ROOT / "scripts" / "quickstart.sh").read_text()


def test_quick_start_main_job_lists_kernels_and_runs_code(kernel_env: dict[str, str]) -> None:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh")],
        env=kernel_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "spec/python3" in out.stdout
    assert "pyimport/kernel" in out.stdout
    assert re.search(r"^42 from ", out.stdout, re.M), out.stdout
    assert _leftovers(kernel_env) == []


def test_command_line_examples_run(kernel_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "analysis.py").write_text("x = 6\n# %%\nprint(x * 7)\n")
    lines = [
        line[2:].split("  #")[0].strip()
        for line in _block_after("readme-cli", "console").splitlines()
        if line.startswith("$ ")
    ]
    assert len(lines) >= 5
    outputs = {}
    for line in lines:
        out = subprocess.run(
            shlex.split(line),
            cwd=tmp_path,
            env=kernel_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, f"{line!r} failed:\n{out.stdout}\n{out.stderr}"
        outputs[line] = out.stdout
    listed = json.loads(outputs["kernel-mgmt list --json"])
    assert listed, "kernel-mgmt list --json printed no kernels"
    assert "spec/python3" in json.dumps(listed)
    assert outputs["kernel-mgmt run spec/python3 -c 'print(6 * 7)'"].strip() == "42"
    assert "42" in outputs["kernel-mgmt run pyimport/kernel analysis.py --cells"]
    assert "spec/python3" in outputs["python -m kernel_mgmt.discovery"].split()
    assert _leftovers(kernel_env) == []


def test_high_level_api_example_runs(kernel_env: dict[str, str], tmp_path: Path) -> None:
    code = _block_after("example-run: high-level-api", "python")
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=kernel_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["42", "True"], out.stdout
    assert _leftovers(kernel_env) == []
