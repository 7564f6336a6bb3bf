"""`kernel-mgmt` CLI: list/providers tables and JSON, --help/--version, the light hot path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernel_mgmt import __version__
from kernel_mgmt.cli import main

BIN = os.path.dirname(sys.executable)
ARGV = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    kernels = tmp_path / "jp" / "kernels"
    for name, display in [("zeta", "Zeta Lang"), ("alpha", "Alpha Lang")]:
        (kernels / name).mkdir(parents=True)
        spec = {"argv": ARGV, "display_name": display, "language": name[:2]}
        (kernels / name / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jp"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "spec,pyimport")
    monkeypatch.delenv("KERNEL_MGMT_CONFIG", raising=False)
    return kernels


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def test_list_table(specs: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TYPE", "ID", "DISPLAY", "NAME", "LANGUAGE", "PROVIDER"]
    rows = [line.split() for line in lines[2:]]
    assert ["spec/alpha", "Alpha", "Lang", "al", "spec"] in rows
    assert ["spec/zeta", "Zeta", "Lang", "ze", "spec"] in rows
    assert any(r[0] == "pyimport/kernel" for r in rows)


def test_list_json(specs: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kernels"]["spec/alpha"]["resource_dir"] == str(specs / "alpha")
    assert data["problems"] == []


def test_list_empty(specs: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "")
    assert main(["list"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "No kernel types found" in captured.err
    assert main(["list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"kernels": {}, "problems": []}


def test_list_names_selected_providers_that_are_not_installed(specs: Path, tmp_path: Path) -> None:
    """KERNEL_MGMT_PROVIDERS (or the config's allow list) naming a provider that is not
    installed: a hint on stderr naming it and where it came from; still exit 0."""
    kernel_mgmt = os.path.join(BIN, "kernel-mgmt")
    out = run(kernel_mgmt, "list", env={"KERNEL_MGMT_PROVIDERS": "nosuch"})
    assert out.returncode == 0 and out.stdout == ""
    assert "No kernel types found." in out.stderr
    assert (
        "kernel-mgmt: hint: KERNEL_MGMT_PROVIDERS='nosuch' names provider(s) not installed: "
        "nosuch (installed: " in out.stderr
    )
    out = run(kernel_mgmt, "list", env={"KERNEL_MGMT_PROVIDERS": "spec, nosuch"})
    assert out.returncode == 0 and "spec/alpha" in out.stdout
    assert "not installed: nosuch" in out.stderr
    out = run(kernel_mgmt, "list", "--json", env={"KERNEL_MGMT_PROVIDERS": "spec,nosuch"})
    assert out.returncode == 0 and "spec/alpha" in json.loads(out.stdout)["kernels"]
    assert "not installed: nosuch" in out.stderr
    config = tmp_path / "config.toml"
    config.write_text('[providers]\nallow = ["spec", "oblong"]\n')
    env = {"KERNEL_MGMT_CONFIG": str(config), "KERNEL_MGMT_PROVIDERS": "spec,pyimport"}
    out = run(kernel_mgmt, "list", env=env)
    assert out.returncode == 0 and "spec/alpha" in out.stdout
    assert "providers.allow names provider(s) not installed: oblong" in out.stderr
    out = run(kernel_mgmt, "list")  # all selected providers installed: no hint
    assert out.returncode == 0 and "hint" not in out.stderr


def test_providers(specs: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("KERNEL_MGMT_PROVIDERS", "spec")
    assert main(["providers", "--json"]) == 0
    infos = {i["id"]: i for i in json.loads(capsys.readouterr().out)}
    assert infos["spec"]["status"] == "ok"
    assert infos["spec"]["distribution"] == "kernel-mgmt-provider-spec"
    assert infos["spec"]["version"] == __version__
    assert infos["spec"]["kernels"] >= 2
    assert infos["pyimport"]["status"] == "disabled"
    assert "KERNEL_MGMT_PROVIDERS" in infos["pyimport"]["reason"]
    assert main(["providers"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["ID", "DISTRIBUTION", "VERSION", "STATUS", "KERNELS", "REASON"]
    assert any(
        line.split()[:4] == ["spec", "kernel-mgmt-provider-spec", __version__, "ok"]
        for line in table
    )


def test_bad_config_is_an_error_naming_the_file(specs, tmp_path, capsys, monkeypatch) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[providers]\ntimeout = 'x'\n")
    monkeypatch.setenv("KERNEL_MGMT_CONFIG", str(bad))
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "providers.timeout" in err


def test_version_and_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"kernel-mgmt {__version__}"
    for args in (["--help"], ["list", "--help"], ["providers", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 0
        assert "usage: kernel-mgmt" in capsys.readouterr().out
    assert main([]) == 2  # no command: help, non-zero


def test_help_everywhere_as_commands() -> None:
    """--help on every command line a user types, as real processes (exit 0, usage on stdout)."""
    for cmd, usage in [
        ([os.path.join(BIN, "kernel-mgmt"), "--help"], "usage: kernel-mgmt"),
        ([os.path.join(BIN, "kernel-mgmt"), "list", "-h"], "usage: kernel-mgmt list"),
        ([os.path.join(BIN, "kernel-mgmt"), "providers", "--help"], "usage: kernel-mgmt providers"),
        ([sys.executable, "-m", "kernel_mgmt", "--help"], "usage: kernel-mgmt"),
        (
            [sys.executable, "-m", "kernel_mgmt.discovery", "--help"],
            "usage: python -m kernel_mgmt.discovery",
        ),
    ]:
        out = run(*cmd)
        assert (out.returncode, out.stdout.startswith(usage)) == (0, True), (cmd, out.stderr)
    out = run(sys.executable, "-m", "kernel_mgmt.discovery", "--bogus")
    assert out.returncode == 2 and "unrecognized arguments: --bogus" in out.stderr


def test_run_help_when_runner_exists(capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("kernel_mgmt.runner", reason="runner.py is written by another builder")
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    assert "usage: kernel-mgmt run" in capsys.readouterr().out


def test_help_documents_options_and_exit_codes() -> None:
    """`kernel-mgmt --help` and `kernel-mgmt run --help`, as a user runs them."""
    top = run(os.path.join(BIN, "kernel-mgmt"), "--help")
    assert top.returncode == 0
    for text in (
        "exit status:",
        "KERNEL_MGMT_PROVIDERS",
        "KERNEL_MGMT_CONFIG",
        "124",
        "130",
        "143 SIGTERM",
    ):
        assert text in top.stdout, text
    out = run(os.path.join(BIN, "kernel-mgmt"), "run", "--help")
    assert out.returncode == 0
    help_text = " ".join(out.stdout.split())  # argparse wraps lines
    for text in (
        "exit status:",
        "0 every cell ran without error",
        "1 an error in the code",
        "2 usage or config error",
        "124 a cell ran longer than --timeout",
        "130 interrupted by Ctrl-C",
        "143 stopped by SIGTERM (128 + SIGTERM); 129 for SIGHUP",
        "0 every cell ran without error (or a cell called exit())",
        "missing or non-UTF-8 file, an --output-dir that cannot be made",
        "'# %% [markdown]' or '# %% [md]'",
        "--output-dir DIR",
        "--timeout S",
        "--startup-timeout S",
        "--cwd DIR",
        "--json",
    ):
        assert text in help_text, text


def test_console_script_and_module_entry(specs: Path) -> None:
    out = run(os.path.join(BIN, "kernel-mgmt"), "list", "--json")
    assert out.returncode == 0, out.stderr
    assert "spec/zeta" in json.loads(out.stdout)["kernels"]
    out = run(sys.executable, "-m", "kernel_mgmt", "--version")
    assert out.stdout.strip() == f"kernel-mgmt {__version__}"
    out = run(sys.executable, "-m", "kernel_mgmt.discovery")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "spec/alpha" in lines and "spec/zeta" in lines and "pyimport/kernel" in lines


def test_list_hot_path_stays_light(specs: Path) -> None:
    """No jsonschema, zmq, asyncio or ipykernel on `kernel-mgmt list` (python -X importtime)."""
    out = run(sys.executable, "-X", "importtime", "-m", "kernel_mgmt", "list")
    assert out.returncode == 0
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    for heavy in ("jsonschema", "zmq", "zmq.asyncio", "asyncio", "ipykernel", "IPython"):
        assert heavy not in imported, heavy
    assert "kernel_mgmt.kernelspec" in imported  # the spec provider did load
    # Every installed provider (as a user runs it): none may drag the heavy modules in.
    env = {k: v for k, v in os.environ.items() if k != "KERNEL_MGMT_PROVIDERS"}
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kernel_mgmt", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    for heavy in ("jsonschema", "zmq", "zmq.asyncio", "asyncio", "ipykernel", "IPython"):
        assert heavy not in imported, heavy


def test_problems_go_to_stderr_once(tmp_path: Path, specs: Path) -> None:
    """A broken provider installed as a real dist-info on sys.path: listed problem, exit 0."""
    site = tmp_path / "site"
    info = site / "km_broken-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: km-broken\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text("[kernel_mgmt]\nbroken = km_broken_missing\n")
    env = {"PYTHONPATH": str(site), "KERNEL_MGMT_PROVIDERS": "spec,broken"}
    out = run(os.path.join(BIN, "kernel-mgmt"), "list", env=env)
    assert out.returncode == 0
    assert "spec/alpha" in out.stdout
    problem_lines = [line for line in out.stderr.splitlines() if "broken" in line]
    assert len(problem_lines) == 1, out.stderr
    assert "km-broken 0.3" in problem_lines[0] and "km_broken_missing" in problem_lines[0]
    out = run(os.path.join(BIN, "kernel-mgmt"), "providers", "--json", env=env)
    infos = {i["id"]: i for i in json.loads(out.stdout)}
    assert infos["broken"]["status"] == "failed"
    assert "ModuleNotFoundError" in infos["broken"]["reason"]


def test_discovery_module_reports_a_bad_config(specs: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[providers]\ntimeout = 'slow'\n")
    out = run(sys.executable, "-m", "kernel_mgmt.discovery", env={"KERNEL_MGMT_CONFIG": str(bad)})
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert str(bad) in out.stderr and "providers.timeout" in out.stderr


def test_provider_output_cannot_corrupt_json(tmp_path: Path, specs: Path) -> None:
    """A provider that prints (at import or while finding) must not break `list --json`."""
    site = tmp_path / "site"
    info = site / "km_chatty-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: km-chatty\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[kernel_mgmt]\nchatty = km_chatty\n")
    (site / "km_chatty.py").write_text(
        "from kernel_mgmt.hookspecs import hookimpl\n"
        "print('chatty: imported')\n"
        "@hookimpl\n"
        "def find_kernels():\n"
        "    print('chatty: finding')\n"
        "    yield 'k', {'display_name': 'Chatty', 'language': 'x'}\n"
    )
    env = {"PYTHONPATH": str(site), "KERNEL_MGMT_PROVIDERS": "spec,chatty"}
    for command in ("list", "providers"):
        out = run(os.path.join(BIN, "kernel-mgmt"), command, "--json", env=env)
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)  # nothing but the JSON document on stdout
        assert "chatty: imported" in out.stderr
        if command == "list":
            assert data["kernels"]["chatty/k"]["display_name"] == "Chatty"
            assert "chatty: finding" in out.stderr
