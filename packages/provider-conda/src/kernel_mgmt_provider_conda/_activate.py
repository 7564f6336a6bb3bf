"""The environment ``conda activate`` would give a process, computed without running conda.

Follows conda's ``activate.py`` (``_build_activate_stuff``) for a non-stacked activation:
the environment's bin folders go first on ``PATH`` (replacing those of an environment that
is already active), ``CONDA_PREFIX``, ``CONDA_SHLVL`` (+1), ``CONDA_DEFAULT_ENV``,
``CONDA_PROMPT_MODIFIER``, ``CONDA_PREFIX_<n>`` for the previous one, the variables of
``etc/conda/env_vars.d/*.json`` (sorted) and then ``conda-meta/state``'s ``env_vars``
(they win), while the previous environment's own variables are unset.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping

from ._util import report

__all__ = [
    "activate_scripts",
    "activated_environ",
    "bin_dirs",
    "environment_vars",
    "shell_wrapper",
]

WIN = sys.platform == "win32"
#: conda's marker for "unset this variable" in conda-meta/state.
UNSET = "***unset***"


def bin_dirs(prefix: str) -> list[str]:
    """The folders conda puts on PATH for ``prefix`` (conda's ``_get_path_dirs``)."""
    if WIN:  # pragma: no cover - exercised on Windows only
        return [
            prefix,
            os.path.join(prefix, "Library", "mingw-w64", "bin"),
            os.path.join(prefix, "Library", "usr", "bin"),
            os.path.join(prefix, "Library", "bin"),
            os.path.join(prefix, "Scripts"),
            os.path.join(prefix, "bin"),
        ]
    return [os.path.join(prefix, "bin")]


def _load_object(path: str) -> dict[str, object] | None:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or e
        report(f"cannot read {path}: {why}; its variables are skipped")
        return None
    if not isinstance(data, dict):
        report(f"{path}: expected a JSON object, got {type(data).__name__}; skipped")
        return None
    return data


def environment_vars(prefix: str) -> dict[str, str]:
    """Variables an environment sets: ``env_vars.d/*.json`` (sorted), then ``state`` (wins).

    A value of ``***unset***`` (conda's marker) maps to ``""`` and is removed by the caller.
    """
    result: dict[str, str] = {}
    folder = os.path.join(prefix, "etc", "conda", "env_vars.d")
    try:
        files = sorted(e.path for e in os.scandir(folder) if e.name.endswith(".json"))
    except OSError:
        files = []
    for path in files:
        data = _load_object(path)
        for key, value in (data or {}).items():
            result[str(key)] = str(value)
    state = _load_object(os.path.join(prefix, "conda-meta", "state"))
    env_vars = (state or {}).get("env_vars", {})
    if isinstance(env_vars, dict):
        for key, value in env_vars.items():
            result[str(key)] = str(value)
    return result


def _norm(path: str) -> str:
    return os.path.normcase(os.path.normpath(path))


def activated_environ(
    base: Mapping[str, str],
    prefix: str,
    default_env: str,
    root_prefix: str | None = None,
) -> dict[str, str]:
    """``base`` (a full environment) as it is after ``conda activate <prefix>``.

    :param default_env: conda's name for the environment: ``base``, the folder name for
        environments in an envs dir, else the full prefix (``CONDA_DEFAULT_ENV``).
    :param root_prefix: the conda installation, to set ``CONDA_EXE`` when it is unset.
    """
    env = dict(base)
    old_prefix = env.get("CONDA_PREFIX") or None
    try:
        old_shlvl = max(0, int(env.get("CONDA_SHLVL") or 0))
    except ValueError:
        old_shlvl = 0

    # Unset what the previously active environment set (conda's deactivate step).
    if old_prefix and _norm(old_prefix) != _norm(prefix):
        for key in environment_vars(old_prefix):
            env.pop(key, None)

    new_bins = bin_dirs(prefix)
    drop = {_norm(d) for d in new_bins}
    if old_prefix:
        drop |= {_norm(d) for d in bin_dirs(old_prefix)}
    path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and _norm(p) not in drop]
    env["PATH"] = os.pathsep.join(new_bins + path)

    if old_prefix and old_shlvl > 0:
        env[f"CONDA_PREFIX_{old_shlvl}"] = old_prefix
    env["CONDA_PREFIX"] = prefix
    env["CONDA_SHLVL"] = str(old_shlvl + 1)
    env["CONDA_DEFAULT_ENV"] = default_env
    env["CONDA_PROMPT_MODIFIER"] = f"({default_env}) "
    if root_prefix and "CONDA_EXE" not in env:
        exe = (
            os.path.join(root_prefix, "Scripts", "conda.exe")
            if WIN
            else os.path.join(root_prefix, "bin", "conda")
        )
        if os.path.exists(exe):
            env["CONDA_EXE"] = exe
            env["CONDA_PYTHON_EXE"] = os.path.join(
                root_prefix, "python.exe" if WIN else os.path.join("bin", "python")
            )
            env["_CE_M"] = ""
            env["_CE_CONDA"] = ""

    for key, value in environment_vars(prefix).items():
        if value == UNSET:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def activate_scripts(prefix: str) -> list[str]:
    """The ``etc/conda/activate.d`` scripts conda would source (``*.sh``; ``*.bat`` on Windows)."""
    folder = os.path.join(prefix, "etc", "conda", "activate.d")
    suffix = ".bat" if WIN else ".sh"
    try:
        return sorted(e.path for e in os.scandir(folder) if e.name.endswith(suffix) and e.is_file())
    except OSError:
        return []


#: Sources every activate.d script, then replaces itself with the kernel (``exec``), so the
#: kernel keeps the shell's process id and process group and signals reach it directly.
#: No braces: the launcher fills ``{name}`` placeholders in every argument.
_SHELL_SCRIPT = """\
for _kernel_mgmt_script in "$CONDA_PREFIX"/etc/conda/activate.d/*.sh; do
    if [ -f "$_kernel_mgmt_script" ]; then . "$_kernel_mgmt_script"; fi
done
unset _kernel_mgmt_script
exec "$@"
"""


def shell_wrapper(argv: list[str]) -> list[str]:
    """``argv`` run by a shell that first sources the activate.d scripts (POSIX only).

    bash is preferred (conda's scripts are written for the user's bash or zsh), else ``sh``.
    """
    shell = shutil.which("bash") or "/bin/sh"
    return [shell, "-c", _SHELL_SCRIPT, "kernel-mgmt-conda-activate", *argv]
