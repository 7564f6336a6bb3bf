"""Robust provider loading from entry points: failures are reported once with the provider id,
distribution and version, and every other provider's kernels still appear. Entry points are
in-process stand-ins here (fast); tests/integration installs real ones."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import kernel_mgmt.discovery as discovery
from kernel_mgmt.discovery import (
    ENTRY_POINT_GROUP,
    OLD_ENTRY_POINT_GROUP,
    KernelFinder,
    KernelProviderBase,
    problems_captured,
    report_problem,
    scan_entry_points,
)
from kernel_mgmt.hookspecs import hookimpl


class Dist:
    def __init__(self, name: str, version: str = "1.0") -> None:
        self.name = name
        self.version = version


class FakeEntryPoint:
    """Quacks like importlib.metadata.EntryPoint; ``load`` runs a callable we choose."""

    def __init__(
        self,
        name: str,
        loader: Callable[[], Any],
        dist: str = "dist-x",
        group: str = ENTRY_POINT_GROUP,
    ) -> None:
        self.name = name
        self.group = group
        self.value = f"{dist.replace('-', '_')}:provider"
        self.dist = Dist(dist)
        self._loader = loader
        self.loaded = False

    def load(self) -> Any:
        self.loaded = True
        return self._loader()


@hookimpl(specname="launch")
async def launch_not_tested(name: str, cwd: Any, launch_params: Any) -> Any:
    """The launch hook of the fake providers here: only their listing is under test."""
    raise NotImplementedError(f"fake provider cannot start {name!r}")


def provider(names: list[str], **kw: Any) -> Callable[[], Any]:
    def load() -> Any:
        mod = types.ModuleType("fake_provider")

        @hookimpl
        def find_kernels():
            for n in names:
                yield n, {"display_name": n, "language": "python"}

        mod.find_kernels = find_kernels
        mod.launch = launch_not_tested
        return mod

    return load


@pytest.fixture(autouse=True)
def _no_env_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KERNEL_MGMT_PROVIDERS", raising=False)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event hung providers wait on; set at teardown so their threads end."""
    event = threading.Event()
    yield event
    event.set()


def finder_for(
    *eps: FakeEntryPoint, config: dict | None = None, timeout: float = 5
) -> KernelFinder:
    return KernelFinder.from_entrypoints(config or {}, entry_points=list(eps), timeout=timeout)


def ids(finder: KernelFinder) -> list[str]:
    return [type_id for type_id, _ in finder.find_kernels()]


def status(finder: KernelFinder, pid: str, dist: str | None = None) -> Any:
    return next(
        p for p in finder.providers if p.id == pid and (dist is None or p.distribution == dist)
    )


def raise_import() -> Any:
    raise ImportError("No module named 'missing_dep'")


def test_import_error_reported_with_names(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    finder = finder_for(
        FakeEntryPoint("broken", raise_import, dist="broken-dist"),
        FakeEntryPoint("good", provider(["k"]), dist="good-dist"),
    )
    assert ids(finder) == ["good/k"]
    (problem,) = finder.problems
    assert (problem.provider, problem.distribution, problem.version) == (
        "broken",
        "broken-dist",
        "1.0",
    )
    assert "missing_dep" in problem.message
    text = str(problem)
    assert "'broken'" in text and "broken-dist 1.0" in text
    assert status(finder, "broken").status == "failed"
    assert status(finder, "good").status == "ok"
    assert sum("missing_dep" in r.getMessage() for r in caplog.records) == 1


def test_exception_in_find_kernels_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)

    def load() -> Any:
        class Raising(KernelProviderBase):
            id = "raising"

            def find_kernels(self):
                yield "first", {"display_name": "F", "language": "x"}
                raise RuntimeError("database is locked")

            async def launch(self, name, cwd=None, launch_params=None):
                raise NotImplementedError

        return Raising  # a class: the finder instantiates it

    finder = finder_for(
        FakeEntryPoint("raising", load, dist="raising-dist"),
        FakeEntryPoint("good", provider(["k"])),
    )
    assert ids(finder) == ["good/k"]
    assert ids(finder) == ["good/k"]
    assert len(finder.problems) == 1
    assert "RuntimeError: database is locked" in str(finder.problems[0])
    assert "raising-dist" in str(finder.problems[0])
    assert sum("database is locked" in r.getMessage() for r in caplog.records) == 1


def test_hanging_provider_times_out(release: threading.Event) -> None:
    def load() -> Any:
        mod = types.ModuleType("hang")

        @hookimpl
        def find_kernels():
            release.wait(30)
            return []

        mod.find_kernels = find_kernels
        return mod

    finder = finder_for(
        FakeEntryPoint("hang", load, dist="hang-dist"),
        FakeEntryPoint("good", provider(["k"])),
        timeout=0.3,
    )
    assert ids(finder) == ["good/k"]
    info = status(finder, "hang")
    assert info.status == "failed" and "longer than 0.3 s" in info.reason
    # A second call does not pile up another stuck thread.
    assert ids(finder) == ["good/k"]
    assert any("still running" in str(p) for p in finder.problems)


def test_hanging_import_times_out(release: threading.Event) -> None:
    def load() -> Any:
        release.wait(30)
        raise ImportError("never")

    finder = finder_for(
        FakeEntryPoint("slowimport", load), FakeEntryPoint("good", provider(["k"])), timeout=0.3
    )
    assert ids(finder) == ["good/k"]
    assert "took longer than 0.3 s" in status(finder, "slowimport").reason


def test_malformed_records_skipped_good_ones_kept() -> None:
    def load() -> Any:
        mod = types.ModuleType("bad")

        @hookimpl
        def find_kernels():
            yield "ok", {"display_name": "OK", "language": "x"}
            yield "not-a-pair"
            yield "a/b", {"display_name": "slash", "language": "x"}
            yield "noname", {"language": "x"}
            yield "badattrs", ["not", "a", "dict"]
            yield "badlang", {"display_name": "L", "language": 3}
            yield "ok", {"display_name": "twice", "language": "x"}

        mod.find_kernels = find_kernels
        mod.launch = launch_not_tested
        return mod

    finder = finder_for(FakeEntryPoint("bad", load, dist="bad-dist"))
    found = dict(finder.find_kernels())
    assert list(found) == ["bad/ok"]
    assert found["bad/ok"]["display_name"] == "OK"
    messages = [p.message for p in finder.problems]
    assert len(messages) == 6
    assert all(p.distribution == "bad-dist" for p in finder.problems)
    assert any("'a/b'" in m for m in messages)
    assert any("display_name" in m for m in messages)
    assert any("yielded twice" in m for m in messages)
    info = status(finder, "bad")
    assert info.status == "ok" and info.kernels == 1 and len(info.problems) == 6


def test_duplicate_id_names_both_distributions() -> None:
    finder = finder_for(
        FakeEntryPoint("dup", provider(["first"]), dist="aaa-first"),
        FakeEntryPoint("dup", provider(["second"]), dist="zzz-second"),
        FakeEntryPoint("good", provider(["k"])),
    )
    # Neither wins (install order must not decide whose kernels appear); one problem names both.
    assert ids(finder) == ["good/k"]
    (problem,) = finder.problems
    assert "aaa-first" in problem.message and "zzz-second" in problem.message
    assert "uninstall all but one" in problem.message
    assert status(finder, "dup", "zzz-second").status == "failed"
    assert status(finder, "dup", "aaa-first").status == "failed"


def test_one_object_under_two_ids_is_a_clear_failure() -> None:
    """The same module named by two entry points: the second id fails with a plain message
    (not pluggy's registry dump), the first keeps working."""
    mod = provider(["k"])()
    finder = finder_for(
        FakeEntryPoint("alpha", lambda: mod, dist="one-dist"),
        FakeEntryPoint("beta", lambda: mod, dist="one-dist"),
    )
    assert ids(finder) == ["alpha/k"]
    reason = status(finder, "beta").reason
    assert "same object as provider 'alpha'" in reason
    assert len(reason) < 200


def test_same_provider_in_both_groups_is_not_a_duplicate() -> None:
    new = FakeEntryPoint("same", provider(["k"]), dist="same-dist")
    old = FakeEntryPoint("same", provider(["k"]), dist="same-dist", group=OLD_ENTRY_POINT_GROUP)
    finder = finder_for(old, new)
    assert ids(finder) == ["same/k"]
    assert finder.problems == []
    assert new.loaded and not old.loaded  # the kernel_mgmt group wins


def test_new_group_shadows_the_old_group() -> None:
    """The old jupyter_kernel_mgmt package registers spec and pyimport under the old group:
    ours (the kernel_mgmt group) load; the old ones are shadowed, with a note saying so."""
    ours = FakeEntryPoint("spec", provider(["python3"]), dist="kernel-mgmt-provider-spec")
    seed = FakeEntryPoint(
        "spec", provider(["old"]), dist="jupyter_kernel_mgmt", group=OLD_ENTRY_POINT_GROUP
    )
    seed_py = FakeEntryPoint(
        "pyimport", provider(["old"]), dist="jupyter_kernel_mgmt", group=OLD_ENTRY_POINT_GROUP
    )
    ours_py = FakeEntryPoint("pyimport", provider(["kernel"]), dist="kernel-mgmt-provider-py")
    finder = finder_for(seed, seed_py, ours, ours_py)
    assert ids(finder) == ["pyimport/kernel", "spec/python3"]
    assert ours.loaded and ours_py.loaded and not seed.loaded and not seed_py.loaded
    assert status(finder, "spec", "kernel-mgmt-provider-spec").status == "ok"
    old = status(finder, "spec", "jupyter_kernel_mgmt")
    assert old.status == "disabled"
    assert old.reason.startswith("shadowed by kernel-mgmt-provider-spec 1.0 (")
    assert "'kernel_mgmt' entry-point group" in old.reason
    assert old.problems == [f"not loaded: {old.reason}"]
    assert sorted((p.provider, p.distribution) for p in finder.problems) == [
        ("pyimport", "jupyter_kernel_mgmt"),
        ("spec", "jupyter_kernel_mgmt"),
    ]
    assert not any("duplicate" in p.message for p in finder.problems)


def test_old_group_claimants_alone_still_clash() -> None:
    finder = finder_for(
        FakeEntryPoint("dup", provider(["a"]), dist="aaa", group=OLD_ENTRY_POINT_GROUP),
        FakeEntryPoint("dup", provider(["b"]), dist="bbb", group=OLD_ENTRY_POINT_GROUP),
    )
    assert ids(finder) == []
    (problem,) = finder.problems
    assert (
        "duplicate provider id 'dup'" in problem.message and "neither is loaded" in problem.message
    )
    assert {i.status for i in finder.providers} == {"failed"}


def test_clash_in_the_new_group_shadows_old_and_names_every_claimant() -> None:
    """Three new-group claimants: none loads ("none of them"); the old-group one is shadowed,
    not a fourth party to the clash."""
    finder = finder_for(
        *(FakeEntryPoint("dup", provider([d]), dist=d) for d in ("aaa", "bbb", "ccc")),
        FakeEntryPoint("dup", provider(["old"]), dist="old-dist", group=OLD_ENTRY_POINT_GROUP),
    )
    assert ids(finder) == []
    dup = [p.message for p in finder.problems if "duplicate" in p.message]
    assert len(dup) == 1
    assert all(d in dup[0] for d in ("aaa", "bbb", "ccc")) and "old-dist" not in dup[0]
    assert "none of them is loaded" in dup[0] and "neither" not in dup[0]
    assert status(finder, "dup", "old-dist").status == "disabled"
    assert [status(finder, "dup", d).status for d in ("aaa", "bbb", "ccc")] == ["failed"] * 3


def test_old_group_loads() -> None:
    finder = finder_for(FakeEntryPoint("legacy", provider(["k"]), group=OLD_ENTRY_POINT_GROUP))
    assert ids(finder) == ["legacy/k"]


@pytest.mark.parametrize("bad", ["Upper", "has/slash", "-lead", "sp ace", ""])
def test_invalid_provider_ids_rejected(bad: str) -> None:
    ep = FakeEntryPoint(bad, provider(["k"]))
    finder = finder_for(ep, FakeEntryPoint("good", provider(["k"])))
    assert ids(finder) == ["good/k"]
    assert not ep.loaded
    assert "invalid provider id" in finder.problems[0].message


def test_id_mismatch_is_reported_entry_point_name_used() -> None:
    def load() -> Any:
        class Named(KernelProviderBase):
            id = "other"

            def find_kernels(self):
                yield "k", {"display_name": "K", "language": "x"}

        return Named

    finder = finder_for(FakeEntryPoint("epname", load))
    assert ids(finder) == ["epname/k"]
    assert "'other'" in finder.problems[0].message


def test_env_var_limits_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    a = FakeEntryPoint("a", provider(["k"]))
    b = FakeEntryPoint("b", provider(["k"]))
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "b, zzz")
    finder = finder_for(a, b)
    assert ids(finder) == ["b/k"]
    assert not a.loaded  # not even imported
    assert status(finder, "a").status == "disabled"
    assert "KERNEL_MGMT_PROVIDERS" in status(finder, "a").reason


def test_empty_env_var_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    a = FakeEntryPoint("a", provider(["k"]))
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "")
    finder = finder_for(a)
    assert ids(finder) == [] and not a.loaded


def test_config_allow_and_deny() -> None:
    eps = [FakeEntryPoint(n, provider(["k"])) for n in ("a", "b", "c")]
    finder = finder_for(*eps, config={"providers": {"allow": ["a", "b"], "deny": ["b"]}})
    assert ids(finder) == ["a/k"]
    assert "allow" in status(finder, "c").reason
    assert "deny" in status(finder, "b").reason


def test_load_config_failure_and_config_section(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict = {}

    def load_ok() -> Any:
        class P(KernelProviderBase):
            id = "p"

            def load_config(self, config=None):
                seen.update(config.get("p", {}))

            def find_kernels(self):
                yield "k", {"display_name": "K", "language": "x"}

        return P

    def load_bad() -> Any:
        class Q(KernelProviderBase):
            id = "q"

            def load_config(self, config=None):
                raise KeyError("needs 'url'")

            def find_kernels(self):
                yield "k", {"display_name": "K", "language": "x"}

        return Q

    finder = finder_for(
        FakeEntryPoint("p", load_ok),
        FakeEntryPoint("q", load_bad),
        config={"p": {"depth": 3}, "q": {}},
    )
    assert ids(finder) == ["p/k"]
    assert seen == {"depth": 3}
    assert "load_config raised KeyError" in status(finder, "q").reason


def test_timeout_from_config(release: threading.Event) -> None:
    def load() -> Any:
        mod = types.ModuleType("hang")

        @hookimpl
        def find_kernels():
            release.wait(30)
            return []

        mod.find_kernels = find_kernels
        return mod

    finder = KernelFinder.from_entrypoints(
        {"providers": {"timeout": 0.2}}, entry_points=[FakeEntryPoint("hang", load)]
    )
    assert finder.timeout == 0.2
    assert ids(finder) == []


def test_timeout_per_provider(release: threading.Event) -> None:
    """``[providers.timeouts]`` gives one provider more (or less) time than the default."""

    def sleeper(seconds: float) -> Callable[[], Any]:
        def load() -> Any:
            mod = types.ModuleType("sleeper")

            @hookimpl
            def find_kernels():
                release.wait(seconds)
                yield "k", {"display_name": "K", "language": "x"}

            mod.find_kernels = find_kernels
            return mod

        return load

    config = {"providers": {"timeout": 0.3, "timeouts": {"patient": 10, "quick": 0.1}}}
    finder = KernelFinder.from_entrypoints(
        config,
        entry_points=[
            FakeEntryPoint("patient", sleeper(0.6)),  # slower than the default, allowed to be
            FakeEntryPoint("quick", sleeper(30)),
            FakeEntryPoint("plain", sleeper(30)),
        ],
    )
    assert (finder.timeout_for("patient"), finder.timeout_for("plain")) == (10.0, 0.3)
    assert ids(finder) == ["patient/k"]
    assert "longer than 0.1 s" in status(finder, "quick").reason
    assert "longer than 0.3 s" in status(finder, "plain").reason


# -- the entry-point scanner ----------------------------------------------------------------


def test_scanner_matches_importlib_metadata() -> None:
    import importlib.metadata as md

    groups = ("console_scripts", ENTRY_POINT_GROUP, "pytest11")
    ours = {(ep.group, ep.name, ep.value, ep.dist.name) for ep in scan_entry_points(groups)}
    theirs = {
        (ep.group, ep.name, ep.value, ep.dist.name)
        for g in groups
        for ep in md.entry_points(group=g)
    }
    assert ours == theirs
    versions = {ep.dist.name: ep.dist.version for ep in scan_entry_points(groups)}
    assert versions["kernel-mgmt-provider-spec"] == md.version("kernel-mgmt-provider-spec")


def test_scanner_reads_a_plain_dist_info(tmp_path: Path) -> None:
    info = tmp_path / "my_prov-2.5.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-prov\nVersion: 2.5\n\nbody")
    (info / "entry_points.txt").write_text(
        "[console_scripts]\nx = y:z\n\n[kernel_mgmt]\nmine = my_prov.sub:Provider [extra]\n"
    )
    (tmp_path / "my_prov").mkdir()
    (tmp_path / "my_prov" / "__init__.py").write_text("")
    (tmp_path / "my_prov" / "sub.py").write_text("class Provider:\n    id = 'mine'\n")
    (ep,) = scan_entry_points(path=[str(tmp_path)])
    assert (ep.name, ep.group, ep.dist.name, ep.dist.version) == (
        "mine",
        "kernel_mgmt",
        "my-prov",
        "2.5",
    )
    sys.path.insert(0, str(tmp_path))
    try:
        assert ep.load().id == "mine"
    finally:
        sys.path.remove(str(tmp_path))
        for mod in ("my_prov.sub", "my_prov"):
            sys.modules.pop(mod, None)


def test_installed_providers_load_from_real_entry_points(tmp_path: Path, monkeypatch) -> None:
    """The editable installs in .venv: spec and pyimport load through the real scanner."""
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "spec,pyimport")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    finder = KernelFinder.from_entrypoints({})
    found = [t for t, _ in finder.find_kernels()]
    assert "pyimport/kernel" in found
    infos = {p.id: p for p in finder.providers if p.status == "ok"}
    assert infos["spec"].distribution == "kernel-mgmt-provider-spec"
    assert infos["spec"].hooks == ["find_kernels", "launch"]
    assert os.environ["KERNEL_MGMT_PROVIDERS"] == "spec,pyimport"


def test_system_exit_in_a_hook_is_contained() -> None:
    """A provider calling sys.exit() (e.g. through some tool's main()) must not end the app."""

    def load_exiting_find() -> Any:
        class Exiting(KernelProviderBase):
            id = "exiting"

            def find_kernels(self):
                sys.exit("usage: some-tool [options]")

        return Exiting

    def load_exiting_config() -> Any:
        class ExitingConfig(KernelProviderBase):
            id = "exitcfg"

            def load_config(self, config=None):
                raise SystemExit(2)

            def find_kernels(self):
                yield "k", {"display_name": "K", "language": "x"}

        return ExitingConfig

    finder = finder_for(
        FakeEntryPoint("exiting", load_exiting_find, dist="exit-dist"),
        FakeEntryPoint("exitcfg", load_exiting_config, dist="exit-dist"),
        FakeEntryPoint("good", provider(["k"])),
    )
    assert ids(finder) == ["good/k"]
    assert "SystemExit" in status(finder, "exiting").reason
    assert "usage: some-tool" in status(finder, "exiting").reason
    assert "load_config raised SystemExit" in status(finder, "exitcfg").reason


def test_scanner_survives_undecodable_metadata(tmp_path: Path) -> None:
    """Any installed distribution's entry_points.txt is read: a broken one (not UTF-8) must not
    stop every provider from loading."""
    bad = tmp_path / "other_pkg-1.0.dist-info"
    bad.mkdir()
    (bad / "entry_points.txt").write_bytes(b"[console_scripts]\ncaf\xe9 = other_pkg:main\n")
    good = tmp_path / "my_prov-1.0.dist-info"
    good.mkdir()
    (good / "entry_points.txt").write_text("[kernel_mgmt]\nmine = my_prov\n")
    assert [ep.name for ep in scan_entry_points(path=[str(tmp_path)])] == ["mine"]


def test_provider_without_launch_hook_is_flagged_at_load() -> None:
    """Listed, but `providers` says why its kernels cannot start; launch says so too."""

    def load() -> Any:
        mod = types.ModuleType("listonly")

        @hookimpl
        def find_kernels():
            yield "k", {"display_name": "K", "language": "x"}

        mod.find_kernels = find_kernels
        return mod

    finder = finder_for(FakeEntryPoint("listonly", load, dist="listonly-dist"))
    message = "has no launch hook: its kernel types are listed but cannot be started"
    info = status(finder, "listonly")
    assert info.status == "ok" and info.hooks == ["find_kernels"]
    assert info.problems == [message]  # at load time, before any listing
    assert [str(p) for p in finder.problems] == [
        f"provider 'listonly' (listonly-dist 1.0): {message}"
    ]
    assert ids(finder) == ["listonly/k"]
    import asyncio

    from kernel_mgmt.discovery import NoSuchKernel

    with pytest.raises(NoSuchKernel, match="has no launch hook"):
        asyncio.run(finder.launch("listonly/k"))


def _reporting_provider(report_from_other_thread: bool = False) -> Callable[[], Any]:
    def load() -> Any:
        report_problem("loading: legacy option ignored")
        mod = types.ModuleType("reports")

        @hookimpl
        def load_config(config):
            assert problems_captured()
            report_problem("config: timeout is not a number")

        @hookimpl
        def find_kernels():
            report_problem("skipping /envs/a/kernel.json: broken")
            logging.getLogger("km_test_provider").warning("a log record is not a problem")
            if report_from_other_thread:  # a thread the hook starts is not the hook's
                t = threading.Thread(target=report_problem, args=("from a helper thread",))
                t.start()
                t.join(5)
            yield "k", {"display_name": "K", "language": "x"}

        mod.load_config = load_config
        mod.find_kernels = find_kernels
        mod.launch = launch_not_tested
        return mod

    return load


EXPECTED_REPORTS = [
    "loading: legacy option ignored",
    "config: timeout is not a number",
    "skipping /envs/a/kernel.json: broken",
]


def test_reported_problems_become_problems(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    handlers = list(logging.getLogger().handlers)
    finder = finder_for(
        FakeEntryPoint("reps", _reporting_provider(report_from_other_thread=True), dist="r-d"),
        FakeEntryPoint("good", provider(["k"])),
    )
    for _ in range(2):  # the same reports again: listed once
        assert ids(finder) == ["good/k", "reps/k"]
    info = status(finder, "reps")
    assert info.status == "ok" and info.kernels == 1
    assert info.problems == EXPECTED_REPORTS
    assert info.to_dict()["problems"] == EXPECTED_REPORTS
    assert [(p.provider, p.distribution, p.message) for p in finder.problems] == [
        ("reps", "r-d", m) for m in EXPECTED_REPORTS
    ]
    assert status(finder, "good").problems == []
    # The finder logs each once, naming the provider; a helper thread's report is only
    # logged (outside a finder-run hook), and a provider's own log records stay log records.
    reports = [r.getMessage() for r in caplog.records if r.name == "kernel_mgmt.discovery"]
    load, config, skipping = (f"provider 'reps' (r-d 1.0): {m}" for m in EXPECTED_REPORTS)
    helper = "from a helper thread"
    assert reports == [load, config, helper, skipping, helper]  # two listings
    assert "a log record is not a problem" in [r.getMessage() for r in caplog.records]
    # The application's logging is left alone.
    assert logging.getLogger().handlers == handlers
    assert problems_captured() is False


def test_report_problem_outside_a_finder_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    report_problem("skipping /x/kernel.json: not JSON")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("kernel_mgmt.discovery", logging.WARNING, "skipping /x/kernel.json: not JSON")
    ]


@pytest.mark.parametrize("quiet", ["root-error", "disable"])
def test_problems_do_not_depend_on_the_apps_logging(quiet: str) -> None:
    """An application that silences warnings still gets every problem in finder.problems."""
    root = logging.getLogger()
    level = root.level
    if quiet == "root-error":
        root.setLevel(logging.ERROR)
    else:
        logging.disable(logging.WARNING)
    try:
        finder = finder_for(FakeEntryPoint("reps", _reporting_provider(), dist="r-d"))
        assert ids(finder) == ["reps/k"]
    finally:
        root.setLevel(level)
        logging.disable(logging.NOTSET)
    assert [p.message for p in finder.problems] == EXPECTED_REPORTS


def test_provider_hung_past_its_timeout_leaves_logging_alone(
    release: threading.Event,
) -> None:
    """What it reported before the timeout is listed; nothing is left on the root logger."""
    handlers = list(logging.getLogger().handlers)
    ended = threading.Event()
    hung: list[int] = []

    def load() -> Any:
        mod = types.ModuleType("stuck")

        @hookimpl
        def find_kernels():
            try:
                hung.append(threading.get_ident())
                report_problem("skipping /envs/slow: still reading")
                release.wait(30)
                report_problem("too late to be listed")
                return []
            finally:
                ended.set()

        mod.find_kernels = find_kernels
        mod.launch = launch_not_tested
        return mod

    finder = finder_for(FakeEntryPoint("stuck", load), timeout=0.3)
    assert ids(finder) == []
    assert logging.getLogger().handlers == handlers  # while it still hangs
    assert hung[0] in discovery._sinks  # the hung call's own sink, nothing global
    release.set()
    assert ended.wait(10)
    deadline = time.monotonic() + 10
    while hung[0] in discovery._sinks and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hung[0] not in discovery._sinks  # removed when the call ended
    assert logging.getLogger().handlers == handlers
    assert sorted(p.message for p in finder.problems) == [
        "find_kernels took longer than 0.3 s",
        "skipping /envs/slow: still reading",
    ]


def test_list_does_not_import_logging_unless_something_is_wrong(tmp_path: Path) -> None:
    """`kernel-mgmt list` with the spec, pyimport and conda providers (python -X importtime):
    no logging import when nothing is wrong; a broken kernel.json is reported on stderr."""
    import json
    import subprocess

    kernels = tmp_path / "jp" / "kernels"
    (kernels / "good").mkdir(parents=True)
    spec = {"argv": ["python", "-f", "{connection_file}"], "display_name": "G", "language": "x"}
    (kernels / "good" / "kernel.json").write_text(json.dumps(spec))
    drop = ("CONDA", "MAMBA", "JUPYTER", "KERNEL_MGMT", "XDG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        HOME=str(tmp_path / "home"),
        JUPYTER_PATH=str(tmp_path / "jp"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
        KERNEL_MGMT_CONDA_CACHE_DIR=str(tmp_path / "cache"),
        KERNEL_MGMT_PROVIDERS="spec,pyimport,conda",
    )

    def run() -> tuple[str, set[str], str]:
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "kernel_mgmt", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert out.returncode == 0, out.stderr
        lines = out.stderr.splitlines()
        imported = {line.split("|")[-1].strip() for line in lines if "import time:" in line}
        other = "\n".join(line for line in lines if "import time:" not in line)
        return out.stdout, imported, other

    stdout, imported, other = run()
    assert "spec/good" in stdout and "pyimport/" in stdout, (stdout, other)
    assert "kernel_mgmt_provider_conda._discover" in imported  # conda did list
    assert "logging" not in imported, other
    assert other == ""
    (kernels / "broken").mkdir()
    (kernels / "broken" / "kernel.json").write_text("{nope")
    stdout, imported, other = run()
    assert "spec/good" in stdout
    assert "logging" in imported  # the same check sees logging when there is a problem
    assert other.count("broken/kernel.json") == 1, other


def test_seed_provider_classes_resolve_through_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`from kernel_mgmt.discovery import KernelSpecProvider` (the seed's documented names)."""
    import kernel_mgmt.discovery as discovery
    import kernel_mgmt_provider_pyimport
    import kernel_mgmt_provider_spec

    for name in ("KernelSpecProvider", "IPykernelProvider"):
        monkeypatch.delitem(discovery.__dict__, name, raising=False)  # no cached look-up
    from kernel_mgmt.discovery import IPykernelProvider, KernelSpecProvider

    assert KernelSpecProvider is kernel_mgmt_provider_spec.KernelSpecProvider
    assert IPykernelProvider is kernel_mgmt_provider_pyimport.IPykernelProvider
    assert issubclass(KernelSpecProvider, KernelProviderBase)
    assert "KernelSpecProvider" not in discovery.__all__  # a star import needs no provider
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        discovery.NoSuchName  # noqa: B018


def test_seed_provider_class_not_installed_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kernel_mgmt.discovery as discovery

    for name in ("KernelSpecProvider", "IPykernelProvider"):
        monkeypatch.delitem(discovery.__dict__, name, raising=False)
    # Only the conda provider is "installed".
    real = scan_entry_points()
    monkeypatch.setattr(
        discovery, "scan_entry_points", lambda *a, **k: [e for e in real if e.name == "conda"]
    )
    with pytest.raises(ImportError, match=r"pip install kernel-mgmt-provider-spec"):
        from kernel_mgmt.discovery import KernelSpecProvider  # noqa: F401
    with pytest.raises(ImportError) as info:
        from kernel_mgmt.discovery import IPykernelProvider  # noqa: F401
    assert "'pyimport' provider, which is not installed" in str(info.value)
    assert "pip install kernel-mgmt-provider-pyimport" in str(info.value)
    # An attribute look-up: an AttributeError (so hasattr() is False) with the same hint.
    assert not hasattr(discovery, "KernelSpecProvider")
    assert getattr(discovery, "IPykernelProvider", None) is None
    with pytest.raises(AttributeError, match="pip install kernel-mgmt-provider-spec") as err:
        discovery.KernelSpecProvider  # noqa: B018
    assert isinstance(err.value, discovery.ProviderClassUnavailable)


def test_import_of_discovery_loads_no_provider() -> None:
    import subprocess

    code = (
        "import sys, kernel_mgmt.discovery; "
        "print(sorted(m for m in sys.modules if m.startswith('kernel_mgmt_provider')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
