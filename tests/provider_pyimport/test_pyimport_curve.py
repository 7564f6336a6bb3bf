"""pyimport declares CurveZMQ support for this interpreter's ipykernel when it is >= 7.3,
from the ``.dist-info`` folder beside the package: no import of ipykernel, nor of
importlib.metadata, on the discovery path."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from kernel_mgmt.curve import ipykernel_supports_curve
from kernel_mgmt_provider_pyimport import IPykernelProvider


def test_declares_support_for_the_installed_ipykernel() -> None:
    ((_, attrs),) = IPykernelProvider().find_kernels()
    declared = attrs["metadata"].get("supported_encryption") == ["curve"]
    assert declared is ipykernel_supports_curve(version("ipykernel"))
    assert declared, "the test peers pin ipykernel 7.4, which supports CurveZMQ"


def test_version_read_without_imports() -> None:
    code = (
        "import sys, kernel_mgmt_provider_pyimport as p; "
        "(_, a), = p.find_kernels(); print(a['metadata'].get('supported_encryption')); "
        "print(sorted(m for m in ('ipykernel', 'IPython', 'importlib.metadata', 'zmq')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[:2] == ["['curve']", "[]"], out.stderr


@pytest.mark.parametrize(("dist_info", "declared"), [("6.29.5", False), ("7.3.1", True)])
def test_follows_the_ipykernel_found_first(tmp_path: Path, dist_info: str, declared: bool) -> None:
    """An older ipykernel earlier on sys.path (its .dist-info says 6.x): not declared, so
    ``auto`` launches it without keys, which it would ignore."""
    site = tmp_path / "site"
    (site / "ipykernel").mkdir(parents=True)
    (site / "ipykernel" / "__init__.py").write_text("")
    (site / f"ipykernel-{dist_info}.dist-info").mkdir()
    code = (
        "import kernel_mgmt_provider_pyimport as p; "
        "(_, a), = p.find_kernels(); print(a['metadata'].get('supported_encryption'))"
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.stdout.strip() == ("['curve']" if declared else "None"), out.stderr
