"""The pyimport provider: one kernel type when ipykernel is importable, found without importing
ipykernel, launched as ``sys.executable -m ipykernel_launcher`` (a real kernel here).
An interpreter without ipykernel (no kernel offered) is covered by tests/integration's venv."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kernel_mgmt_provider_pyimport as pyimport
from kernel_mgmt.discovery import KernelFinder
from kernel_mgmt_provider_pyimport import IPykernelProvider


def test_offers_one_kernel() -> None:
    kernels = dict(IPykernelProvider().find_kernels())
    assert list(kernels) == ["kernel"]
    attrs = kernels["kernel"]
    assert attrs["argv"] == [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert attrs["language"] == "python"
    assert attrs["language_info"]["name"] == "python"
    assert os.path.isdir(attrs["resource_dir"])
    assert dict(pyimport.find_kernels()) == kernels


def test_finder_type_id() -> None:
    assert [t for t, _ in KernelFinder([IPykernelProvider]).find_kernels()] == ["pyimport/kernel"]


def test_detection_does_not_import_ipykernel() -> None:
    code = (
        "import sys, kernel_mgmt_provider_pyimport as p; assert list(p.find_kernels()); "
        "print('ipykernel' in sys.modules, 'IPython' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_launch_real_ipykernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client import BlockingKernelClient

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    finder = KernelFinder([IPykernelProvider()])
    info, manager = asyncio.run(finder.launch("pyimport/kernel", cwd=str(tmp_path)))
    client = BlockingKernelClient()
    try:
        client.load_connection_info(info)
        # No heartbeat: without a parent manager, jupyter_client treats a heartbeat not yet
        # answered by a slow-starting kernel as a dead kernel.
        client.start_channels(hb=False)
        client.wait_for_ready(timeout=60)
        out: list[str] = []
        client.execute_interactive(
            "import os, sys; print(os.getcwd() + '|' + sys.executable)",
            output_hook=lambda m: out.append(m["content"].get("text", "")),
            timeout=60,
        )
        assert "".join(out).strip() == f"{tmp_path}|{sys.executable}"
    finally:
        client.stop_channels()
        asyncio.run(manager.kill())
        asyncio.run(manager.cleanup())
    assert not any((tmp_path / "runtime").glob("kernel-*.json"))


async def test_unknown_name_rejected() -> None:
    with pytest.raises(ValueError, match="only 'kernel'"):
        await IPykernelProvider().launch("other")
