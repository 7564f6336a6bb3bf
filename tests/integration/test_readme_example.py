"""The README's "Writing a provider" example, run for real in this environment: the module is
loaded from the README text and a kernel is launched through it (tests/integration/
test_entrypoints.py pip-installs the same files into a fresh venv)."""

from __future__ import annotations

import asyncio
import re
import types
from pathlib import Path

import pytest

from kernel_mgmt.discovery import InvalidLaunchParams, KernelFinder

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!-- example-file: (\S+) -->\s*```\w*\n(.*?)```", re.S)


def example_files() -> dict[str, str]:
    """``{relative path: text}`` from README.md, else from docs/README-foundation.md."""
    for doc in (ROOT / "README.md", ROOT / "docs" / "README-foundation.md"):
        if doc.exists():
            files = dict(MARKER.findall(doc.read_text()))
            if files:
                return files
    raise AssertionError("no <!-- example-file: ... --> blocks in README.md or docs/")


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
        client.start_channels()
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
