"""The optional conda executable: a stand-in script answers `info --json` as conda documents it.

(The only stand-in in these tests: there is no conda on this machine.)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import kernel_mgmt_provider_conda as provider
from kernel_mgmt_provider_conda import _discover

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX script stand-in")
IPYKERNEL = ("ipykernel-6.29.5-pyh3099207_0",)


def stand_in(
    folder: Path,
    answer: dict[str, Any],
    *,
    env_list: dict | None = None,
    exit_code: int = 0,
    sleep: float = 0,
) -> Path:
    """A `conda` script printing ``answer`` for `info --json`; each run appends to calls.log."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "conda"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys, time\n"
        f"open({str(folder / 'calls.log')!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        f"time.sleep({sleep})\n"
        f"if {exit_code}:\n"
        "    sys.stderr.write('CondaError: something broke\\n')\n"
        f"    sys.exit({exit_code})\n"
        "if sys.argv[1:] == ['info', '--json']:\n"
        f"    print(json.dumps({answer!r}))\n"
        "elif sys.argv[1:] == ['env', 'list', '--json']:\n"
        f"    print(json.dumps({env_list!r}))\n"
        "else:\n"
        "    sys.exit(2)\n"
    )
    script.chmod(0o755)
    return script


def calls(script: Path) -> list[str]:
    log = script.parent / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def info_answer(root: Path, envs: list[Path], envs_dirs: list[Path]) -> dict[str, Any]:
    """The keys conda's `info --json` prints that we read, plus some we ignore."""
    return {
        "active_prefix": None,
        "conda_version": "24.1.2",
        "root_prefix": str(root),
        "envs_dirs": [str(d) for d in envs_dirs],
        "envs": [str(root), *map(str, envs)],
        "platform": "linux-64",
    }


def test_info_json_adds_envs_and_is_cached(conda: Any) -> None:
    root = conda.make_env(conda.tmp / "hidden-root", packages=IPYKERNEL)
    elsewhere = conda.make_env(conda.tmp / "somewhere" / "proj", packages=IPYKERNEL)
    conda.make_env(root / "envs" / "inroot", packages=IPYKERNEL)
    script = stand_in(conda.tmp / "bin", info_answer(root, [elsewhere], [root / "envs"]))
    assert conda.kernels() == {}  # nothing on disk tells us about them
    kernels = conda.kernels(conda_executable=str(script))
    assert sorted(kernels) == ["base-python3", "inroot-python3", "proj-python3"]
    assert calls(script) == ["info --json"]
    # Cached in memory and on disk: a new process does not run conda again ...
    _discover.clear_memory()
    assert sorted(conda.kernels(conda_executable=str(script))) == sorted(kernels)
    assert calls(script) == ["info --json"]
    # ... until environments.txt (which conda rewrites on create/remove) changes.
    txt = conda.environments_txt(elsewhere)
    st = os.stat(txt)
    os.utime(txt, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    conda.kernels(conda_executable=str(script))
    assert calls(script) == ["info --json", "info --json"]


def test_auto_finds_conda_exe(conda: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    root = conda.make_env(conda.tmp / "r", packages=IPYKERNEL)
    script = stand_in(root / "bin", info_answer(root, [], []))
    monkeypatch.setenv("CONDA_EXE", str(script))
    assert list(conda.kernels(conda_executable="auto")) == ["base-python3"]
    assert calls(script) == ["info --json"]


def test_micromamba_style_falls_back_to_env_list(conda: Any) -> None:
    root = conda.make_env(conda.tmp / "mm", packages=IPYKERNEL)
    env = conda.make_env(conda.tmp / "mmenvs" / "e", packages=IPYKERNEL)
    answer = {"base environment": str(root), "envs directories": [str(conda.tmp / "none")]}
    script = stand_in(conda.tmp / "bin", answer, env_list={"envs": [str(root), str(env)]})
    assert sorted(conda.kernels(conda_executable=str(script))) == ["base-python3", "e-python3"]
    assert calls(script) == ["info --json", "env list --json"]


@pytest.mark.parametrize(
    ("kwargs", "config", "fragment"),
    [
        ({"exit_code": 1}, {}, "exited with status 1: CondaError: something broke"),
        ({"sleep": 20}, {"executable_timeout": 0.5}, "took more than 0.5 s"),
    ],
)
def test_failing_executable_falls_back_to_disk(
    conda: Any, caplog: pytest.LogCaptureFixture, kwargs: dict, config: dict, fragment: str
) -> None:
    conda.make_root()
    conda.env("ondisk", packages=IPYKERNEL)
    script = stand_in(conda.tmp / "bin", {}, **kwargs)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="kernel_mgmt_provider_conda"):
        kernels = conda.kernels(conda_executable=str(script), **config)
    assert time.monotonic() - start < 10
    assert list(kernels) == ["ondisk-python3"]
    messages = [r.getMessage() for r in caplog.records]
    assert any(fragment in m and str(script) in m for m in messages), messages


def test_missing_executable_is_a_warning(conda: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kernel_mgmt_provider_conda"):
        assert conda.kernels(conda_executable=str(conda.tmp / "nope" / "conda")) == {}
    assert any("not found or not executable" in r.getMessage() for r in caplog.records)


def test_answer_format_is_json_object(conda: Any) -> None:
    """Guard for the stand-in itself: what it prints parses as conda's documented shape."""
    root = conda.make_env(conda.tmp / "r")
    script = stand_in(conda.tmp / "bin", info_answer(root, [], []))
    import subprocess

    out = subprocess.run([str(script), "info", "--json"], capture_output=True, timeout=30)
    assert json.loads(out.stdout)["root_prefix"] == str(root)
    provider.load_config({})


def test_slow_executable_never_blocks_the_event_loop(conda: Any) -> None:
    """A conda that takes 2 s: listing (through the finder) and launching run it off the loop.

    A ticker on the loop records the longest gap between its 10 ms ticks; had the call run
    on the loop, that gap would be the executable's 2 s.
    """
    import asyncio

    from kernel_mgmt.discovery import KernelFinder, NoSuchKernel

    conda.make_root()
    conda.env("ondisk", packages=IPYKERNEL)
    script = stand_in(conda.tmp / "bin", info_answer(conda.root, [], []), sleep=2)
    # cache_ttl 0: every call asks the executable again.
    config = {"conda_executable": str(script), "cache_ttl": 0}
    finder = KernelFinder([provider], config={"conda": config})

    async def longest_gap_during(work: Any) -> tuple[Any, float, float]:
        loop = asyncio.get_running_loop()
        gaps: list[float] = []
        stop = asyncio.Event()
        ticking = asyncio.Event()

        async def ticker() -> None:
            last = loop.time()
            ticking.set()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                now = loop.time()
                gaps.append(now - last)
                last = now

        task = asyncio.create_task(ticker())
        await ticking.wait()  # ticking before the work starts, so a blocked loop shows
        start = time.monotonic()
        try:
            result: Any = await work
        except NoSuchKernel as e:
            result = e
        elapsed = time.monotonic() - start
        stop.set()
        await task
        return result, elapsed, max(gaps)

    async def main() -> list[tuple[Any, float, float]]:
        listed = await longest_gap_during(finder.find_kernels_async())
        launched = await longest_gap_during(provider.launch("nope-python3", None, None))
        return [listed, launched]

    (found, t_list, gap_list), (error, t_launch, gap_launch) = asyncio.run(
        asyncio.wait_for(main(), 60)
    )
    assert [name for name, _ in found] == ["conda/ondisk-python3"]
    assert isinstance(error, NoSuchKernel)
    assert calls(script) == ["info --json", "info --json"]  # it really ran, each time
    assert t_list >= 1.9 and t_launch >= 1.9
    assert gap_list < 1.0 and gap_launch < 1.0, (gap_list, gap_launch)


def test_timeout_bounds_info_and_env_list_together(
    conda: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """micromamba style (two runs): ``executable_timeout`` is the budget for both, so the
    provider stays within the finder's own timeout."""
    conda.make_root()
    conda.env("ondisk", packages=IPYKERNEL)
    answer = {"base environment": str(conda.root), "envs directories": []}
    # Each run alone fits in the 3 s budget; both together (5 s) do not.
    script = stand_in(conda.tmp / "bin", answer, env_list={"envs": []}, sleep=2.5)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="kernel_mgmt_provider_conda"):
        kernels = conda.kernels(conda_executable=str(script), executable_timeout=3)
    elapsed = time.monotonic() - start
    assert calls(script) == ["info --json", "env list --json"]
    assert elapsed < 4.2, elapsed  # 3 s budget, not 5 s
    assert list(kernels) == ["ondisk-python3"]  # what is on disk, despite the failure
    messages = [r.getMessage() for r in caplog.records]
    assert any("env list --json" in m and "took more than" in m for m in messages), messages
