"""Discovery results cached in memory and on disk, invalidated by what the scan read."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

import kernel_mgmt_provider_conda as provider
from kernel_mgmt_provider_conda import _discover

IPYKERNEL = ("ipykernel-6.29.5-pyh3099207_0",)


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts real scans (cache misses)."""
    calls: list[int] = []
    real = _discover.scan

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_discover, "scan", counting)
    return calls


def names() -> list[str]:
    return sorted(name for name, _ in provider.find_kernels())


def bump(path: Path) -> None:
    """Move a path's mtime forward by a second (a real edit within one timestamp tick
    may leave it unchanged; the cache's racy-window rule covers that case)."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def settle(top: Path) -> None:
    """Date everything 10 s back, as for environments made before the listing.

    (A result read within 50 ms of a change is trusted for one second only.)
    """
    past = time.time() - 10
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (past, past))


def test_memory_then_disk_then_scan(conda: Any, scans: list[int]) -> None:
    conda.make_root()
    conda.env("a", kernels={"python3": conda.spec()})
    settle(conda.tmp)
    assert names() == ["a-python3"]
    assert names() == ["a-python3"]
    assert len(scans) == 1  # the second call came from memory
    _discover.flush()  # the disk cache is written at exit, or now
    files = list(conda.cache.glob("kernels-*.json"))
    assert len(files) == 1
    _discover.clear_memory()  # a new process: only the disk cache is left
    assert names() == ["a-python3"]
    assert len(scans) == 1
    assert json.loads(files[0].read_text())["kernels"][0]["name"] == "a-python3"


def test_new_env_invalidates(conda: Any, scans: list[int]) -> None:
    conda.make_root()
    conda.env("a", packages=IPYKERNEL)
    assert names() == ["a-python3"]
    conda.env("b", packages=IPYKERNEL)
    bump(conda.root / "envs")
    assert names() == ["a-python3", "b-python3"]
    assert len(scans) == 2


def test_kernelspec_edit_invalidates(conda: Any, scans: list[int]) -> None:
    conda.make_root()
    prefix = conda.env("a", kernels={"python3": conda.spec()})
    kernel_json = prefix / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    assert dict(provider.find_kernels())["a-python3"]["display_name"] == "Python 3 (conda: a)"
    kernel_json.write_text(json.dumps(conda.spec("Py")))
    bump(kernel_json)
    assert dict(provider.find_kernels())["a-python3"]["display_name"] == "Py (conda: a)"
    assert len(scans) == 2


def test_ipykernel_install_invalidates(conda: Any, scans: list[int]) -> None:
    conda.make_root()
    prefix = conda.env("a")
    assert names() == []
    conda.make_env(prefix, packages=IPYKERNEL)
    bump(prefix / "conda-meta")
    assert names() == ["a-python3"]


def test_new_condarc_and_environments_txt_invalidate(conda: Any, scans: list[int]) -> None:
    assert names() == []
    extra = conda.make_env(conda.tmp / "extra" / "x", packages=IPYKERNEL)
    conda.condarc(f"envs_dirs: [{conda.tmp / 'extra'}]\n")
    assert names() == ["x-python3"]
    listed = conda.make_env(conda.tmp / "solo", packages=IPYKERNEL)
    conda.environments_txt(listed)
    assert names() == ["solo-python3", "x-python3"]
    assert len(scans) == 3
    assert extra.exists()


def test_deleted_env_invalidates(conda: Any) -> None:
    import shutil

    conda.make_root()
    conda.env("a", packages=IPYKERNEL)
    gone = conda.env("b", packages=IPYKERNEL)
    assert names() == ["a-python3", "b-python3"]
    shutil.rmtree(gone)
    assert names() == ["a-python3"]


def test_ttl_zero_disables_caching(conda: Any, scans: list[int]) -> None:
    conda.make_root()
    conda.env("a", packages=IPYKERNEL)
    provider.load_config({"conda": {"cache_ttl": 0}})
    list(provider.find_kernels())
    list(provider.find_kernels())
    assert len(scans) == 2
    _discover.flush()
    assert not conda.cache.exists()


def test_ttl_expiry_rescans(conda: Any, scans: list[int]) -> None:
    conda.make_root()
    conda.env("a", packages=IPYKERNEL)
    provider.load_config({"conda": {"cache_ttl": 1e-9}})
    list(provider.find_kernels())
    list(provider.find_kernels())
    assert len(scans) == 2


def test_cache_dir_from_config(conda: Any, tmp_path: Path) -> None:
    conda.make_root()
    conda.env("a", packages=IPYKERNEL)
    folder = tmp_path / "elsewhere"
    provider.load_config({"conda": {"cache_dir": str(folder)}})
    list(provider.find_kernels())
    _discover.flush()
    assert list(folder.glob("kernels-*.json"))
    assert not conda.cache.exists()


def test_corrupt_disk_cache_is_ignored(conda: Any, scans: list[int]) -> None:
    conda.make_root()
    conda.env("a", packages=IPYKERNEL)
    assert names() == ["a-python3"]
    _discover.flush()
    (cache_file,) = conda.cache.glob("kernels-*.json")
    for damaged in ("{broken", "[]", '{"format": 1, "kernels": [], "watch": [], "created": 0}'):
        _discover.clear_memory()  # a new process (the last one wrote its cache at exit)
        cache_file.write_text(damaged)
        assert names() == ["a-python3"], damaged
    assert len(scans) == 4
    _discover.flush()
    assert json.loads(cache_file.read_text())["kernels"]  # rewritten


def test_settings_are_part_of_the_key(conda: Any) -> None:
    conda.make_root()
    conda.env("a", packages=IPYKERNEL)
    assert names() == ["a-python3"]
    provider.load_config({"conda": {"name_format": "{env}"}})
    assert names() == ["a"]


def test_warnings_once_per_scan_not_per_call(conda: Any, caplog: pytest.LogCaptureFixture) -> None:
    conda.make_root()
    conda.env("a", kernels={"bad": "{"})
    settle(conda.tmp)
    with caplog.at_level(logging.WARNING, logger="kernel_mgmt_provider_conda"):
        list(provider.find_kernels())
        list(provider.find_kernels())
    assert len([r for r in caplog.records if "bad" in r.getMessage()]) == 1


def test_racy_results_trusted_briefly(conda: Any) -> None:
    """A result read right after a change is marked racy: kept one second, not cache_ttl."""
    conda.make_root()
    conda.env("a", packages=IPYKERNEL)
    result = _discover.discover(_discover.CondaConfig())
    assert result["racy"] is True  # the env was written a moment ago
    assert _discover._fresh(result, 3600, result["created"] + 0.5)
    assert not _discover._fresh(result, 3600, result["created"] + 1.5)
    settled = dict(result, racy=False)
    assert _discover._fresh(settled, 3600, result["created"] + 1.5)
