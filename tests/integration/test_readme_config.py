"""The README's config example is a valid config file that the finder honours."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kernel_mgmt.config import load_config
from kernel_mgmt.discovery import KernelFinder

README = Path(__file__).resolve().parents[2] / "README.md"


def _config_block() -> str:
    match = re.search(r"<!-- example-config -->\s*```toml\n(.*?)```", README.read_text(), re.S)
    assert match, "README.md lost its <!-- example-config --> toml block"
    return match.group(1)


def test_readme_config_example_loads_and_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(_config_block())
    config = load_config([str(path)])
    assert config["providers"]["allow"] == ["spec", "conda"]
    assert config["providers"]["deny"] == ["pyimport"]

    finder = KernelFinder([], config=config)
    assert finder.timeout == 10
    assert finder.timeout_for("conda") == 30
    assert finder.timeout_for("spec") == 10

    # Through KERNEL_MGMT_CONFIG, as a user would: allow/deny decide what loads.
    monkeypatch.setenv("KERNEL_MGMT_CONFIG", str(path))
    monkeypatch.delenv("KERNEL_MGMT_PROVIDERS", raising=False)
    loaded = KernelFinder.from_entrypoints()
    ids = {p.id for p in loaded.providers if p.status == "ok"}
    assert "pyimport" not in ids
    assert ids == {"spec", "conda"}
