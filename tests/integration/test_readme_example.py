"""The README's "Writing a provider" example, run for real in this environment: the module is
loaded from the README text and a kernel is launched through it (tests/integration/
test_entrypoints.py pip-installs the same files into a fresh venv)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from kernel_mgmt.discovery import InvalidLaunchParams, KernelFinder

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!-- example-file: (\S+) -->\s*```\w*\n(.*?)```", re.S)
RUN_MARKER = re.compile(r"<!-- example-run: (\S+) -->\s*```python\n(.*?)```", re.S)


def _blocks(pattern: re.Pattern[str]) -> dict[str, str]:
    found = dict(pattern.findall((ROOT / "README.md").read_text()))
    assert found, f"no {pattern.pattern[:20]}... blocks in README.md"
    return found


def example_files() -> dict[str, str]:
    """``{relative path: text}`` from README.md."""
    return _blocks(MARKER)


def _python3_spec_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose only provider is spec, with one real python3 kernelspec."""
    kernel = tmp_path / "jp" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Python 3", "language": "python"}
    (kernel / "kernel.json").write_text(json.dumps(spec))
    env = {
        **os.environ,
        "JUPYTER_PATH": str(tmp_path / "jp"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "KERNEL_MGMT_PROVIDERS": "spec",
    }
    env.pop("KERNEL_MGMT_CONFIG", None)
    return env


def test_core_readme_example_runs(tmp_path: Path) -> None:
    """packages/core/README.md's KernelFinder snippet, run as written against one kernelspec."""
    readme = Path(__file__).resolve().parents[2] / "packages" / "core" / "README.md"
    (code,) = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=_python3_spec_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "spec/python3 Python 3" in out.stdout.splitlines()
    assert not list((tmp_path / "runtime").glob("kernel-*.json"))


def test_using_kernelfinder_example_runs(tmp_path: Path) -> None:
    """The "Using KernelFinder" snippet, run as a script against one real python3 kernelspec."""
    code = _blocks(RUN_MARKER)["using-kernelfinder"]
    env = _python3_spec_env(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "spec/python3 : Python 3 (python)" in out.stdout.splitlines()
    assert not any((tmp_path / "runtime").glob("kernel-*.json"))  # cleaned up


def test_example_has_one_pyproject_and_one_module() -> None:
    files = example_files()
    assert sorted(files) == [
        "kernel-mgmt-hello/kernel_mgmt_hello.py",
        "kernel-mgmt-hello/pyproject.toml",
    ]
    assert "[project.entry-points.kernel_mgmt]" in files["kernel-mgmt-hello/pyproject.toml"]


def load_module() -> types.ModuleType:
    source = example_files()["kernel-mgmt-hello/kernel_mgmt_hello.py"]
    module = types.ModuleType("kernel_mgmt_hello")
    exec(compile(source, "kernel_mgmt_hello.py", "exec"), module.__dict__)
    return module


def test_example_launches_a_real_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client import BlockingKernelClient

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    finder = KernelFinder({"hello": load_module()})
    assert [t for t, _ in finder.find_kernels()] == ["hello/python"]
    with pytest.raises(InvalidLaunchParams, match="greeting"):
        asyncio.run(finder.launch("hello/python", launch_params={"greeting": 42}))
    info, manager = asyncio.run(finder.launch("hello/python", launch_params={"greeting": "hi"}))
    client = BlockingKernelClient()
    try:
        client.load_connection_info(info)
        # No heartbeat: without a parent manager, jupyter_client treats a heartbeat not yet
        # answered by a slow-starting kernel as a dead kernel.
        client.start_channels(hb=False)
        client.wait_for_ready(timeout=60)
        out: list[str] = []
        client.execute_interactive(
            "import os; print(os.environ['GREETING'])",
            output_hook=lambda m: out.append(m["content"].get("text", "")),
            timeout=60,
        )
        assert "".join(out).strip() == "hi"
    finally:
        client.stop_channels()
        asyncio.run(manager.kill())
        asyncio.run(manager.cleanup())
    assert manager.returncode is not None, "the kernel outlived the test"
    assert not list(tmp_path.glob("kernel-*.json")), "connection file left behind"
