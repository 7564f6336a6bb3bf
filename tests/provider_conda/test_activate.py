"""The environment conda activation gives, computed without conda; activate.d through a shell."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kernel_mgmt_provider_conda._activate import (
    activate_scripts,
    activated_environ,
    environment_vars,
    shell_wrapper,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX layout and shells")


def test_fresh_activation(conda: Any) -> None:
    prefix = conda.env("proj")
    base = {"PATH": "/usr/local/bin:/usr/bin", "HOME": "/h"}
    env = activated_environ(base, str(prefix), "proj")
    assert env["PATH"] == f"{prefix}/bin:/usr/local/bin:/usr/bin"
    assert env["CONDA_PREFIX"] == str(prefix)
    assert env["CONDA_DEFAULT_ENV"] == "proj"
    assert env["CONDA_SHLVL"] == "1"
    assert env["CONDA_PROMPT_MODIFIER"] == "(proj) "
    assert "CONDA_PREFIX_0" not in env and "CONDA_EXE" not in env
    assert env["HOME"] == "/h"
    assert base == {"PATH": "/usr/local/bin:/usr/bin", "HOME": "/h"}  # not modified


def test_replaces_an_already_active_env(conda: Any) -> None:
    """Like `conda activate` from inside another env: its bin folder and vars go away."""
    old = conda.env("old", env_vars={"old.json": {"OLD_ONLY": "1", "BOTH": "old"}})
    new = conda.env("new", env_vars={"new.json": {"BOTH": "new"}})
    base = {
        "PATH": f"/x:{old}/bin:/usr/bin:{new}/bin",
        "CONDA_PREFIX": str(old),
        "CONDA_SHLVL": "1",
        "OLD_ONLY": "1",
        "BOTH": "old",
    }
    env = activated_environ(base, str(new), "new")
    assert env["PATH"] == f"{new}/bin:/x:/usr/bin"
    assert env["CONDA_SHLVL"] == "2"
    assert env["CONDA_PREFIX_1"] == str(old)
    assert env["CONDA_PREFIX"] == str(new)
    assert "OLD_ONLY" not in env
    assert env["BOTH"] == "new"


def test_env_vars_d_then_state(conda: Any) -> None:
    prefix = conda.env(
        "v",
        env_vars={"b.json": {"X": "b", "Y": "b"}, "a.json": {"X": "a", "Z": "a"}},
        state={"env_vars": {"Y": "state", "GONE": "***unset***"}},
    )
    assert environment_vars(str(prefix)) == {
        "X": "b",  # files in sorted order, later wins
        "Z": "a",
        "Y": "state",  # conda-meta/state wins over packages
        "GONE": "***unset***",
    }
    env = activated_environ({"PATH": "/usr/bin", "GONE": "1"}, str(prefix), "v")
    assert "GONE" not in env
    assert env["Y"] == "state"


def test_broken_env_vars_file_is_skipped_with_warning(
    conda: Any, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = conda.env("v", env_vars={"ok.json": {"A": "1"}})
    bad = prefix / "etc" / "conda" / "env_vars.d" / "bad.json"
    bad.write_text("[1, 2")
    with caplog.at_level(logging.WARNING, logger="kernel_mgmt_provider_conda"):
        assert environment_vars(str(prefix)) == {"A": "1"}
    assert any(str(bad) in r.getMessage() for r in caplog.records)


def test_conda_exe_set_from_the_root(conda: Any) -> None:
    root = conda.make_root()
    (root / "bin").mkdir()
    (root / "bin" / "conda").write_text("#!/bin/sh\n")
    prefix = conda.env("e")
    env = activated_environ({"PATH": "/usr/bin"}, str(prefix), "e", str(root))
    assert env["CONDA_EXE"] == str(root / "bin" / "conda")
    assert env["CONDA_PYTHON_EXE"] == str(root / "bin" / "python")
    kept = activated_environ({"PATH": "", "CONDA_EXE": "/mine"}, str(prefix), "e", str(root))
    assert kept["CONDA_EXE"] == "/mine"


def test_activate_scripts_run_and_exec_keeps_the_pid(conda: Any, tmp_path: Path) -> None:
    prefix = conda.env(
        "s",
        activate={
            "10-first.sh": 'export ORDER="first"\n',
            "20-second.sh": 'export ORDER="$ORDER,second"\nexport FROM_SCRIPT="$CONDA_PREFIX"\n',
            "notes.txt": "exit 3\n",
        },
    )
    assert [Path(p).name for p in activate_scripts(str(prefix))] == ["10-first.sh", "20-second.sh"]
    env = activated_environ(dict(os.environ), str(prefix), "s")
    code = (
        "import os, sys; "
        "print(os.getpid(), os.environ['ORDER'], os.environ['FROM_SCRIPT'], sys.argv[1:])"
    )
    argv = shell_wrapper([sys.executable, "-c", code, "a b", "$HOME", "{x}"])
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    pid, order, from_script, args = out.split(" ", 3)
    assert int(pid) == proc.pid  # exec: the kernel is the process we started
    assert order == "first,second"
    assert from_script == str(prefix)
    assert args.strip() == "['a b', '$HOME', '{x}']"  # arguments pass through untouched


def test_kernelspec_env_expands_against_the_activated_environment(conda: Any) -> None:
    """``${PATH}`` in an env's kernelspec means the activated PATH (env bin first)."""
    from kernel_mgmt_provider_conda._launch import CondaKernelLauncher

    prefix = conda.env("expand")
    launcher = CondaKernelLauncher(
        [sys.executable, "-c", "pass"],
        prefix=str(prefix),
        default_env="expand",
        root_prefix=None,
        spec_env={"PATH": "/opt/extra:${PATH}", "WHERE": "${CONDA_PREFIX}/share"},
        cwd=None,
        launch_params=None,
        kernel_name="conda/expand-python3",
    )
    env = launcher.build_popen_kwargs("/nonexistent/kernel-x.json")["env"]
    assert env["PATH"].startswith(f"/opt/extra:{prefix}/bin{os.pathsep}")
    assert env["WHERE"] == f"{prefix}/share"
