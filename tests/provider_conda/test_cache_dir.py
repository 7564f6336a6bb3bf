"""The disk cache's folder is platformdirs' user cache dir, computed without importing it."""

from __future__ import annotations

import platformdirs
import pytest

from kernel_mgmt_provider_conda._cache import user_cache_dir


@pytest.mark.parametrize("xdg", [None, "", "   ", "/tmp/xdg-cache", "relative/cache"], ids=repr)
def test_user_cache_dir_is_platformdirs(monkeypatch: pytest.MonkeyPatch, tmp_path, xdg) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    assert user_cache_dir() == platformdirs.user_cache_dir("kernel_mgmt", appauthor=False)
