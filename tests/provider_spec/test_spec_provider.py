"""The spec provider: Jupyter's search order, case-insensitive names, broken specs skipped with
one warning, parity with jupyter_core's path and `jupyter kernelspec list`, and a real launch."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kernel_mgmt_provider_spec as spec_provider
from kernel_mgmt import paths
from kernel_mgmt.discovery import KernelFinder
from kernel_mgmt_provider_spec import KernelSpecProvider

ARGV = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def make(root: Path, name: str, spec: dict | str | None = None, **extra) -> Path:
    d = root / "kernels" / name
    d.mkdir(parents=True)
    if spec is None:
        spec = {"argv": ARGV, "display_name": name, "language": "python", **extra}
    (d / "kernel.json").write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return d


@pytest.fixture
def jp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated JUPYTER_PATH entry (plus private data/config/IPython dirs)."""
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jp"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    for var in ("JUPYTER_PREFER_ENV_PATH", "JUPYTER_PLATFORM_DIRS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "jp"


def found(search_path=None) -> dict[str, dict]:
    return dict(KernelSpecProvider(search_path).find_kernels())


def test_search_path_is_jupyter_cores(jp: Path) -> None:
    import jupyter_core.paths

    assert paths.jupyter_path("kernels") == jupyter_core.paths.jupyter_path("kernels")
    assert paths.jupyter_path("kernels")[0] == str(jp / "kernels")


def test_attributes(jp: Path) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    d = make(
        jp,
        "rich",
        env={"A": "1"},
        interrupt_mode="message",
        metadata={"launch_parameter_schema": schema},
        vendor_key=[1],
    )
    attrs = found()["rich"]
    assert attrs == {
        "argv": ARGV,
        "display_name": "rich",
        "language": "python",
        "language_info": {"name": "python"},
        "resource_dir": str(d),
        "interrupt_mode": "message",
        "env": {"A": "1"},
        "metadata": {"launch_parameter_schema": schema},
        "vendor_key": [1],
    }


def test_precedence_and_case_insensitivity(jp: Path, tmp_path: Path) -> None:
    make(jp, "Shared", display_name="from JUPYTER_PATH")
    make(tmp_path / "data", "shared", display_name="from user dir")
    make(tmp_path / "data", "user-only")
    kernels = found()
    assert kernels["shared"]["display_name"] == "from JUPYTER_PATH"
    assert kernels["shared"]["resource_dir"] == str(jp / "kernels" / "Shared")
    assert "user-only" in kernels
    assert "Shared" not in kernels


def test_explicit_search_path(tmp_path: Path) -> None:
    make(tmp_path / "a", "one")
    make(tmp_path / "b", "two")
    assert list(found([str(tmp_path / "b" / "kernels")])) == ["two"]


def test_broken_specs_skipped_with_one_warning(jp: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    make(jp, "good")
    make(jp, "badjson", "{nope")
    make(jp, "badtype", {"argv": ARGV, "display_name": "x", "language": 3})
    make(jp, "noargv", {"display_name": "x", "language": "x"})
    make(jp, "bad name")
    for _ in range(3):
        assert list(found([str(jp / "kernels")])) == ["good", "noargv"]
    messages = [r.getMessage() for r in caplog.records if r.name == "kernel_mgmt_provider_spec"]
    for needle in ("badjson/kernel.json", "badtype/kernel.json", "noargv/kernel.json", "bad name"):
        assert sum(needle in m for m in messages) == 1, (needle, messages)
    assert any("not valid JSON" in m for m in messages)
    assert any("'language' must be a string" in m for m in messages)
    assert any("noargv/kernel.json has no (or an empty) 'argv'" in m for m in messages)


def _finder_problems(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], dict]:
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "spec")
    finder = KernelFinder.from_entrypoints({})
    kernels = dict(finder.find_kernels())
    (info,) = [p for p in finder.providers if p.id == "spec"]
    assert info.status == "ok"
    assert [p.message for p in finder.problems] == info.problems  # one provider: same list
    return info.to_dict()["problems"], kernels


def test_skipped_kernelspecs_are_the_providers_problems(
    jp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warnings reach KernelFinder.problems and `providers` (not only stderr), naming the
    file, for every finder in the process (the provider logs once per process otherwise)."""
    make(jp, "good")
    make(jp, "badjson", "{nope")
    make(jp, "notobject", "[1]")
    make(jp, "badtype", {"argv": ARGV, "display_name": 3, "language": "x"})
    make(jp, "nullenv", {"argv": ARGV, "display_name": "x", "language": "x", "env": None})
    make(jp, "noargv", {"display_name": "x", "language": "x"})
    for _ in range(2):  # a second finder in the same process sees them too
        problems, kernels = _finder_problems(monkeypatch)
        assert {"spec/good", "spec/noargv"} <= set(kernels)
        assert not {"spec/badjson", "spec/notobject", "spec/badtype"} & set(kernels)
        assert len(problems) == 5, problems
        for name in ("badjson", "notobject", "badtype", "nullenv"):
            path = jp / "kernels" / name / "kernel.json"
            assert sum(p.startswith(f"skipping kernelspec {path}: ") for p in problems) == 1
        noargv = jp / "kernels" / "noargv" / "kernel.json"
        assert any(
            p.startswith(f"kernelspec {noargv} has no (or an empty) 'argv'") for p in problems
        )


def test_problems_reach_the_finder_whatever_the_apps_logging(
    jp: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """report_problem(), not logging: silenced warnings do not hide problems, and each is
    logged once (by the finder), not once more by the provider."""
    make(jp, "good")
    make(jp, "badjson", "{nope")
    path = jp / "kernels" / "badjson" / "kernel.json"
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        problems, _ = _finder_problems(monkeypatch)
    finally:
        root.setLevel(level)
    assert [p for p in problems if str(path) in p] == [problems[0]] and len(problems) == 1
    with caplog.at_level(logging.WARNING):
        problems, _ = _finder_problems(monkeypatch)
    assert len(problems) == 1
    logged = [(r.name, r.getMessage()) for r in caplog.records if str(path) in r.getMessage()]
    assert logged == [
        (
            "kernel_mgmt.discovery",
            f"provider 'spec' (kernel-mgmt-provider-spec "
            f"{spec_provider.__version__}): {problems[0]}",
        )
    ]


def test_providers_json_lists_spec_problems(jp: Path) -> None:
    """`kernel-mgmt providers --json` in a fresh process (logging not imported before)."""
    make(jp, "good")
    make(jp, "badjson", "{nope")
    env = {**os.environ, "KERNEL_MGMT_PROVIDERS": "spec"}
    out = subprocess.run(
        [sys.executable, "-m", "kernel_mgmt", "providers", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    (spec,) = [p for p in json.loads(out.stdout) if p["id"] == "spec"]
    assert spec["status"] == "ok" and spec["kernels"] == len(found())
    assert spec["problems"] == [
        f"skipping kernelspec {jp / 'kernels' / 'badjson' / 'kernel.json'}: not valid JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    ]
    lines = [line for line in out.stderr.splitlines() if "badjson" in line]
    assert len(lines) == 1 and lines[0].startswith("provider 'spec' ("), out.stderr


#: kernel.json files and whether jupyter_client (8.x) lists them. Missing keys get defaults
#: there (language "", display_name "", argv []); values of the wrong type are rejected.
PARITY_CASES: dict[str, tuple[dict | str, bool]] = {
    "nolang": ({"argv": ARGV, "display_name": "Echo"}, True),
    "nodisplay": ({"argv": ARGV, "language": "python"}, True),
    "noargv": ({"display_name": "No argv", "language": "python"}, True),
    "emptyargv": ({"argv": [], "display_name": "Empty", "language": "python"}, True),
    "emptyobject": ("{}", True),
    "badjson": ("{", False),
    "emptyfile": ("", False),
    "notobject": ("[1, 2]", False),
    "langnumber": ({"argv": ARGV, "display_name": "x", "language": 3}, False),
    "langnull": ({"argv": ARGV, "display_name": "x", "language": None}, False),
    "displaynumber": ({"argv": ARGV, "display_name": 3, "language": "x"}, False),
    "argvnull": ({"argv": None, "display_name": "x", "language": "x"}, False),
    "envlist": ({"argv": ARGV, "display_name": "x", "language": "x", "env": []}, False),
    "envnull": ({"argv": ARGV, "display_name": "x", "language": "x", "env": None}, False),
    "metalist": ({"argv": ARGV, "display_name": "x", "language": "x", "metadata": []}, False),
    "modebogus": (
        {"argv": ARGV, "display_name": "x", "language": "x", "interrupt_mode": "x"},
        False,
    ),
    "protocolnumber": (
        {"argv": ARGV, "display_name": "x", "language": "x", "kernel_protocol_version": 5},
        False,
    ),
}


def test_parity_with_jupyter_kernelspec_list(jp: Path, tmp_path: Path) -> None:
    make(jp, "alpha", env={"X": "1"}, metadata={"debugger": True})
    make(jp, "Beta", interrupt_mode="Message")  # any case, as jupyter_client reads it
    make(tmp_path / "data", "beta", display_name="shadowed")
    make(tmp_path / "data", "gamma.v2")
    for name, (spec, _listed) in PARITY_CASES.items():
        make(jp, name, spec)
    out = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "jupyter"), "kernelspec", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    theirs = json.loads(out.stdout)["kernelspecs"]
    listed = {name for name, (_spec, ok) in PARITY_CASES.items() if ok}
    assert listed <= set(theirs) and not (set(PARITY_CASES) - listed) & set(theirs)
    ours = found()
    assert set(ours) == set(theirs)
    for name, entry in theirs.items():
        assert ours[name]["resource_dir"] == entry["resource_dir"], name
        for key in ("argv", "display_name", "language", "interrupt_mode", "env", "metadata"):
            if key == "display_name" and entry["spec"][key] == "":
                # Ours is the folder name where the file has none (jupyter_client: "").
                assert ours[name][key] == name, name
                continue
            assert ours[name][key] == entry["spec"][key], (name, key)
        assert ours[name]["language_info"] == {"name": entry["spec"]["language"]}, name


def test_kernelspec_without_language_runs(jp: Path, tmp_path: Path) -> None:
    """The reviewer's case: no language in kernel.json; `kernel-mgmt run` still runs it."""
    make(jp, "echo", {"argv": ARGV, "display_name": "Echo"})
    env = {**os.environ, "KERNEL_MGMT_PROVIDERS": "spec"}
    out = subprocess.run(
        [sys.executable, "-m", "kernel_mgmt", "run", "spec/echo", "-c", "print(6 * 7)"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "42" in out.stdout
    assert "echo" not in out.stderr  # no warning about it
    assert not any((tmp_path / "runtime").glob("kernel-*.json"))


def test_launch_without_argv_names_the_file(jp: Path) -> None:
    from kernel_mgmt.subproc.launcher import KernelLaunchError

    make(jp, "noargv", {"display_name": "N", "language": "python"})
    make(jp, "emptyargv", {"argv": [], "display_name": "E", "language": "python"})
    finder = KernelFinder([KernelSpecProvider()])
    assert {"spec/noargv", "spec/emptyargv"} <= set(dict(finder.find_kernels()))

    async def go():
        for name, problem in (("noargv", "missing required key 'argv'"), ("emptyargv", "empty")):
            path = jp / "kernels" / name / "kernel.json"
            with pytest.raises(KernelLaunchError) as info:
                await finder.launch(f"spec/{name}")
            assert f"spec/{name}" in str(info.value) and str(path) in str(info.value)
            assert problem in str(info.value) and "argv" in str(info.value)

    asyncio.run(go())


def test_finder_uses_spec_provider_by_entry_point(jp: Path, monkeypatch) -> None:
    make(jp, "viaep")
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "spec")
    finder = KernelFinder.from_entrypoints({})
    assert "spec/viaep" in dict(finder.find_kernels())


def test_module_hooks_and_seed_class_agree(jp: Path) -> None:
    make(jp, "k")
    assert dict(spec_provider.find_kernels()) == found()
    assert KernelSpecProvider.id == "spec"


def test_light_import() -> None:
    code = (
        "import sys, kernel_mgmt_provider_spec as s; list(s.find_kernels()); "
        "print(sorted(m for m in ('jsonschema', 'zmq', 'asyncio', 'logging') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_launch_real_kernel_with_env(jp: Path) -> None:
    """Launch through the finder, talk to it with jupyter_client (a real peer)."""
    from jupyter_client import BlockingKernelClient

    make(jp, "EnvKernel", env={"KM_SPEC_TEST": "from-kernelspec"})
    finder = KernelFinder([KernelSpecProvider()])

    async def launch():
        return await finder.launch("spec/envkernel")

    info, manager = asyncio.run(launch())
    client = BlockingKernelClient()
    try:
        assert info["kernel_name"] == "envkernel"
        client.load_connection_info(info)
        # No heartbeat: without a parent manager, jupyter_client treats a heartbeat not yet
        # answered by a slow-starting kernel as a dead kernel.
        client.start_channels(hb=False)
        client.wait_for_ready(timeout=60)
        outputs: list[str] = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                outputs.append(msg["content"]["text"])

        reply = client.execute_interactive(
            "import os; print(os.environ['KM_SPEC_TEST'])", output_hook=hook, timeout=60
        )
        assert reply["content"]["status"] == "ok"
        assert "".join(outputs).strip() == "from-kernelspec"
    finally:
        client.stop_channels()
        asyncio.run(manager.kill())
        asyncio.run(manager.cleanup())


def test_launch_keeps_kernel_id(jp: Path, tmp_path: Path) -> None:
    make(jp, "idk")
    finder = KernelFinder([KernelSpecProvider()])

    async def go():
        _, manager = await finder.launch("spec/idk", kernel_id="fixed-id")
        try:
            assert manager.kernel_id == "fixed-id"
            assert os.path.exists(tmp_path / "runtime" / "kernel-fixed-id.json")
        finally:
            await manager.kill()
            await manager.cleanup()
        assert not os.path.exists(tmp_path / "runtime" / "kernel-fixed-id.json")

    asyncio.run(go())


def test_launch_by_any_case(jp: Path, tmp_path: Path) -> None:
    """Kernelspec names are case-insensitive: spec/MixedCase launches the 'mixedcase' folder."""
    make(
        jp,
        "MixedCase",
        {"argv": ["python", "-I", "-S", "-c", "pass"], "display_name": "M", "language": "python"},
    )
    finder = KernelFinder([KernelSpecProvider()])

    async def go():
        for type_id in ("spec/MixedCase", "spec/MIXEDCASE"):
            info, manager = await finder.launch(type_id)
            try:
                assert info["kernel_name"] == "mixedcase"
                assert await manager.wait(60) is False and manager.returncode == 0
            finally:
                await manager.kill()
                await manager.cleanup()

    asyncio.run(go())
    assert not any((tmp_path / "runtime").glob("kernel-*.json"))


def test_env_values_expand_variables_as_jupyter_client(
    jp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """jupyter_client fills ${VAR} in a kernelspec's env from the launch environment
    (string.Template.safe_substitute), e.g. "PATH": "/opt/k/bin:${PATH}"."""
    monkeypatch.setenv("KM_BASE", "/base")
    monkeypatch.delenv("KM_UNSET", raising=False)
    out = tmp_path / "env.json"
    code = (
        "import json, os, sys; json.dump({k: os.environ.get(k) for k in ('KM_A', 'KM_B', 'KM_C')},"
        " open(sys.argv[1], 'w'))"
    )
    env = {"KM_A": "/opt/k:${KM_BASE}", "KM_B": "$KM_BASE/x ${KM_UNSET} $$", "KM_C": "plain"}
    make(
        jp,
        "templated",
        {
            "argv": ["python", "-I", "-S", "-c", code, str(out)],
            "display_name": "T",
            "language": "python",
            "env": env,
        },
    )
    finder = KernelFinder([KernelSpecProvider()])

    async def go():
        _info, manager = await finder.launch("spec/templated")
        try:
            assert await manager.wait(60) is False and manager.returncode == 0
        finally:
            await manager.kill()
            await manager.cleanup()

    asyncio.run(go())
    assert json.loads(out.read_text()) == {
        "KM_A": "/opt/k:/base",
        "KM_B": "/base/x ${KM_UNSET} $",
        "KM_C": "plain",
    }


def test_launch_of_a_removed_kernelspec_is_no_such_kernel(jp: Path) -> None:
    import shutil

    from kernel_mgmt.discovery import NoSuchKernel

    d = make(jp, "gone")
    finder = KernelFinder([KernelSpecProvider()])
    assert "spec/gone" in dict(finder.find_kernels())
    shutil.rmtree(d)  # uninstalled after the listing

    async def go():
        with pytest.raises(NoSuchKernel, match="spec/gone"):
            await finder.launch("spec/gone")

    asyncio.run(go())
