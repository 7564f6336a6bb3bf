"""Optional: ask a conda/mamba/micromamba executable where its environments are.

Used only when ``conda_executable`` is configured: spawning conda takes seconds (up to a
minute on big installs), so discovery never depends on it. The answer is cached on disk
and in memory for ``cache_ttl`` and until ``environments.txt`` or the executable change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from typing import Any

from ._cache import load_json, save_json, signature

__all__ = ["ExecutableInfo", "conda_info", "resolve_executable"]

ExecutableInfo = dict[str, Any]  # {"root_prefix": str|None, "envs_dirs": [...], "envs": [...]}

_memory: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()


class CondaExecutableError(RuntimeError):
    """The configured conda executable could not be found, run, or understood."""


def resolve_executable(setting: str, environ: Mapping[str, str]) -> str:
    """Path of the executable ``setting`` names (``"auto"``: CONDA_EXE, MAMBA_EXE, then PATH).

    :raises CondaExecutableError: when none is found.
    """
    search = environ.get("PATH", os.defpath)
    if setting == "auto":
        for candidate in (environ.get("CONDA_EXE"), environ.get("MAMBA_EXE")):
            if candidate and os.access(candidate, os.X_OK):
                return candidate
        for name in ("conda", "mamba", "micromamba"):
            found = shutil.which(name, path=search)
            if found:
                return found
        raise CondaExecutableError(
            "conda_executable = 'auto': no conda, mamba or micromamba found "
            "(CONDA_EXE, MAMBA_EXE, PATH)"
        )
    expanded = os.path.expanduser(setting)
    found = expanded if os.sep in expanded else shutil.which(expanded, path=search)
    if not found or not os.access(found, os.X_OK):
        raise CondaExecutableError(f"conda_executable {setting!r}: not found or not executable")
    return found


def _run(exe: str, args: list[str], timeout: float) -> Any:
    try:
        proc = subprocess.run(
            [exe, *args],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise CondaExecutableError(
            f"'{exe} {' '.join(args)}' took more than {timeout:g} s "
            "(raise conda.executable_timeout, or unset conda.conda_executable)"
        ) from e
    except OSError as e:
        raise CondaExecutableError(f"cannot run {exe!r}: {e}") from e
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise CondaExecutableError(
            f"'{exe} {' '.join(args)}' exited with status {proc.returncode}: {tail[0]}"
        )
    try:
        data = json.loads(proc.stdout)
    except ValueError as e:
        raise CondaExecutableError(f"'{exe} {' '.join(args)}' did not print JSON: {e}") from e
    if not isinstance(data, dict):
        raise CondaExecutableError(f"'{exe} {' '.join(args)}' printed {type(data).__name__}")
    return data


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _query(exe: str, timeout: float) -> ExecutableInfo:
    """Run ``info --json`` (and ``env list --json`` when info lists no envs, as micromamba).

    ``timeout`` bounds both runs together: the finder gives a provider 10 s in all.
    """
    deadline = time.monotonic() + timeout
    info = _run(exe, ["info", "--json"], timeout)
    root = info.get("root_prefix") or info.get("base environment")
    envs_dirs = _strings(info.get("envs_dirs") or info.get("envs directories"))
    envs = _strings(info.get("envs"))
    if "envs" not in info:
        left = deadline - time.monotonic()
        if left <= 0:
            raise CondaExecutableError(
                f"'{exe} info --json' used up the {timeout:g} s allowed "
                "(raise conda.executable_timeout, or unset conda.conda_executable)"
            )
        envs = _strings(_run(exe, ["env", "list", "--json"], left).get("envs"))
    return {
        "root_prefix": root if isinstance(root, str) else None,
        "envs_dirs": envs_dirs,
        "envs": envs,
    }


def conda_info(
    exe: str, timeout: float, ttl: float, cache_dir: str | None, environments_txt: str
) -> ExecutableInfo:
    """What ``exe`` reports, from cache when still valid.

    Valid means: younger than ``ttl`` and ``exe`` and ``environments_txt`` (which conda
    updates whenever it creates or removes an environment) unchanged.

    :raises CondaExecutableError: when it has to be run and fails.
    """
    watch = {exe: signature(exe), environments_txt: signature(environments_txt)}
    now = time.time()
    disk = None
    if cache_dir and ttl > 0:
        import hashlib

        disk = os.path.join(
            cache_dir, "info-" + hashlib.sha1(exe.encode()).hexdigest()[:16] + ".json"
        )
    with _lock:
        for entry in (_memory.get(exe), load_json(disk) if disk else None):
            if (
                isinstance(entry, dict)
                and entry.get("watch") == watch
                and now - entry.get("created", 0) < ttl
            ):
                _memory[exe] = entry
                return entry["info"]
        info = _query(exe, timeout)
        entry = {"created": now, "watch": watch, "info": info}
        if ttl > 0:
            _memory[exe] = entry
            if disk:
                save_json(disk, entry)
        return info


def clear_memory() -> None:
    """Forget cached answers (tests, benchmarks)."""
    with _lock:
        _memory.clear()
