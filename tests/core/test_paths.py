"""kernel_mgmt.paths gives exactly jupyter_core.paths' answers under many environments.

jupyter_core computes its system paths at import time, so it is reloaded after each
environment change; kernel_mgmt.paths reads the environment on every call.
"""

from __future__ import annotations

import importlib
import itertools
import os
import site
import sys
from collections.abc import Iterator
from pathlib import Path

import jupyter_core.paths as jcp
import pytest

from kernel_mgmt import paths

VARS = (
    "JUPYTER_PATH",
    "JUPYTER_DATA_DIR",
    "JUPYTER_RUNTIME_DIR",
    "JUPYTER_CONFIG_DIR",
    "JUPYTER_CONFIG_PATH",
    "JUPYTER_PREFER_ENV_PATH",
    "JUPYTER_PLATFORM_DIRS",
    "JUPYTER_NO_CONFIG",
    "XDG_DATA_HOME",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for var in VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield monkeypatch
    monkeypatch.undo()
    importlib.reload(jcp)  # restore jupyter_core's import-time constants


def reference() -> dict[str, object]:
    ref = importlib.reload(jcp)
    return {
        "jupyter_path": ref.jupyter_path(),
        "kernels": ref.jupyter_path("kernels"),
        "data": ref.jupyter_data_dir(),
        "runtime": ref.jupyter_runtime_dir(),
        "config": ref.jupyter_config_dir(),
        "config_path": ref.jupyter_config_path(),
        "prefer_env": ref.prefer_environment_over_user(),
        "SYSTEM_JUPYTER_PATH": ref.SYSTEM_JUPYTER_PATH,
        "ENV_JUPYTER_PATH": ref.ENV_JUPYTER_PATH,
    }


def ours() -> dict[str, object]:
    return {
        "jupyter_path": paths.jupyter_path(),
        "kernels": paths.jupyter_path("kernels"),
        "data": paths.jupyter_data_dir(),
        "runtime": paths.jupyter_runtime_dir(),
        "config": paths.jupyter_config_dir(),
        "config_path": paths.jupyter_config_path(),
        "prefer_env": paths.prefer_environment_over_user(),
        "SYSTEM_JUPYTER_PATH": paths.system_jupyter_path(),
        "ENV_JUPYTER_PATH": paths.ENV_JUPYTER_PATH,
    }


COMBOS = list(
    itertools.product(
        [None, "one", "two"],  # JUPYTER_PATH
        [None, "data"],  # JUPYTER_DATA_DIR / JUPYTER_RUNTIME_DIR / JUPYTER_CONFIG_DIR
        [None, "1", "0", "no", "TRUE"],  # JUPYTER_PREFER_ENV_PATH
        [None, "1", "off"],  # JUPYTER_PLATFORM_DIRS
        [False, True],  # XDG_DATA_HOME set
    )
)


@pytest.mark.parametrize(("jpath", "dirs", "prefer", "platform", "xdg"), COMBOS)
def test_parity_with_jupyter_core(env, tmp_path, jpath, dirs, prefer, platform, xdg) -> None:
    if jpath == "one":
        env.setenv("JUPYTER_PATH", str(tmp_path / "jp1") + os.sep)
    elif jpath == "two":
        env.setenv("JUPYTER_PATH", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    if dirs:
        env.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
        env.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "rt"))
        env.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "cfg"))
        env.setenv("JUPYTER_CONFIG_PATH", str(tmp_path / "cp"))
    if prefer is not None:
        env.setenv("JUPYTER_PREFER_ENV_PATH", prefer)
    if platform is not None:
        env.setenv("JUPYTER_PLATFORM_DIRS", platform)
    if xdg:
        env.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert ours() == reference()


@pytest.mark.parametrize("user_site", [False, True])
@pytest.mark.parametrize(
    "conda",
    [None, ("base", True), ("myenv", True), ("myenv", False)],
)
def test_parity_outside_a_virtualenv(env, tmp_path, user_site, conda) -> None:
    """Pretend sys.prefix is a base interpreter (or a conda env) instead of the venv."""
    env.setattr(sys, "base_prefix", sys.prefix)
    env.setattr(site, "ENABLE_USER_SITE", user_site)
    if conda is not None:
        name, matches = conda
        env.setenv("CONDA_DEFAULT_ENV", name)
        env.setenv("CONDA_PREFIX", sys.prefix if matches else str(tmp_path / "elsewhere"))
    assert ours() == reference()


@pytest.mark.parametrize("login", ["owner", "someone-else", "no-terminal"])
@pytest.mark.parametrize("in_venv", [True, False])
def test_parity_of_the_venv_ownership_check(env, login, in_venv) -> None:
    """jupyter_core prefers the env path in a venv the *login* user owns (by name, so under
    sudo the invoking user decides), else falls back to the effective uid."""
    import pwd

    owner = pwd.getpwuid(os.stat(os.path.realpath(sys.prefix)).st_uid).pw_name

    def getlogin() -> str:
        if login == "no-terminal":
            raise OSError(6, "No such device or address")
        return owner if login == "owner" else "someone-else"

    env.setattr(os, "getlogin", getlogin)
    if not in_venv:
        env.setattr(sys, "base_prefix", sys.prefix)
    assert ours() == reference()
    assert paths.prefer_environment_over_user() is (in_venv and login != "someone-else")


def test_parity_with_another_prefix(env, tmp_path) -> None:
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    env.setattr(sys, "prefix", str(prefix))
    # ENV_JUPYTER_PATH is an import-time constant in both modules; compare the computed path.
    assert paths.jupyter_path("kernels") == reference()["kernels"]


def test_no_config_gives_an_empty_private_dir(env) -> None:
    env.setenv("JUPYTER_NO_CONFIG", "1")
    d = paths.jupyter_config_dir()
    assert os.path.isdir(d) and os.listdir(d) == []
    assert paths.jupyter_config_dir() == d
    assert paths.jupyter_config_path() == [d]


def test_envset() -> None:
    os.environ.pop("KM_TEST_FLAG", None)
    assert paths.envset("KM_TEST_FLAG") is False
    assert paths.envset("KM_TEST_FLAG", True) is True
    for value, expected in [("0", False), ("No", False), ("0.0", False), ("yes", True), ("", True)]:
        os.environ["KM_TEST_FLAG"] = value
        try:
            assert paths.envset("KM_TEST_FLAG") is expected
            assert paths.envset("KM_TEST_FLAG") == jcp.envset("KM_TEST_FLAG")
        finally:
            del os.environ["KM_TEST_FLAG"]


def test_light_import() -> None:
    import subprocess

    code = "import sys, kernel_mgmt.paths; print('platformdirs' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # only JUPYTER_PLATFORM_DIRS=1 needs it
