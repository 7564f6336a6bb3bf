"""Finding conda environments and their kernel types from files, without running conda."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import kernel_mgmt_provider_conda as provider
from kernel_mgmt_provider_conda import _discover

IPYKERNEL = ("ipykernel-6.29.5-pyh3099207_0",)
#: Seconds a finder here gives each hook call: these tests are about what is listed, not
#: about the 10 s default, which a machine busy with other people's kernels can exceed.
PATIENT = 60


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "kernel_mgmt_provider_conda" and r.levelno == logging.WARNING
    ]


def test_kernelspec_in_env_is_named_after_env_and_kernel(conda: Any) -> None:
    conda.make_root()
    prefix = conda.env("myenv", kernels={"python3": conda.spec(), "ir": conda.spec("R", "R")})
    kernels = conda.kernels()
    assert sorted(kernels) == ["myenv-ir", "myenv-python3"]
    attrs = kernels["myenv-python3"]
    assert attrs["display_name"] == "Python 3 (conda: myenv)"
    assert attrs["language"] == "python"
    assert attrs["language_info"] == {"name": "python"}
    # "python" in a kernelspec inside an env means that env's python.
    assert attrs["argv"] == [
        str(prefix / "bin" / "python"),
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    assert attrs["resource_dir"] == str(prefix / "share" / "jupyter" / "kernels" / "python3")
    assert attrs["metadata"]["conda"] == {
        "env_name": "myenv",
        "env_prefix": str(prefix),
        "is_base": False,
        "kernelspec": "python3",
        "root_prefix": str(conda.root),
    }
    assert attrs["metadata"]["conda_env_name"] == "myenv"
    assert attrs["metadata"]["conda_env_path"] == str(prefix)
    assert kernels["myenv-ir"]["display_name"] == "R (conda: myenv)"


def test_kernelspec_keys_and_prefix_placeholder_kept(conda: Any) -> None:
    conda.make_root()
    extra = {
        "env": {"A": "1"},
        "interrupt_mode": "message",
        "metadata": {"debugger": True},
        "custom_key": 7,
    }
    body = conda.spec(**extra)
    body["argv"] = ["{prefix}/bin/mykernel", "-f", "{connection_file}"]
    prefix = conda.env("e1", kernels={"mine": body})
    attrs = conda.kernels()["e1-mine"]
    assert attrs["argv"][0] == f"{prefix}/bin/mykernel"
    assert attrs["env"] == {"A": "1"}
    assert attrs["interrupt_mode"] == "message"
    assert attrs["custom_key"] == 7
    assert attrs["metadata"]["debugger"] is True
    assert attrs["metadata"]["conda"]["env_name"] == "e1"


def test_python_kernel_from_ipykernel_package_record(conda: Any) -> None:
    conda.make_root()
    prefix = conda.env("withipk", packages=("python-3.12.1-h0_0", *IPYKERNEL))
    conda.env("noipk", packages=("python-3.12.1-h0_0", "numpy-1.26.0-py312_0"))
    kernels = conda.kernels()
    assert list(kernels) == ["withipk-python3"]
    attrs = kernels["withipk-python3"]
    assert attrs["display_name"] == "Python 3 (conda: withipk)"
    assert attrs["argv"][:3] == [str(prefix / "bin" / "python"), "-m", "ipykernel_launcher"]
    assert attrs["metadata"]["conda"]["kernelspec"] is None
    assert "resource_dir" not in attrs


def test_python_kernel_from_site_packages(conda: Any) -> None:
    """pip-installed ipykernel: no conda record, but the package folder exists."""
    conda.make_root()
    prefix = conda.env("pipenv", packages=("python-3.10.4-h0_0",))
    pkg = prefix / "lib" / "python3.10" / "site-packages" / "ipykernel"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    # without a python record, lib/python3.* is searched
    other = conda.env("nopyrecord")
    pkg = other / "lib" / "python3.9" / "site-packages" / "ipykernel"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    assert sorted(conda.kernels()) == ["nopyrecord-python3", "pipenv-python3"]


def test_no_extra_python_kernel_when_env_has_python_kernelspec(conda: Any) -> None:
    conda.make_root()
    conda.env(
        "both", packages=IPYKERNEL, kernels={"python3": conda.spec(), "ir": conda.spec("R", "R")}
    )
    conda.env("custom", packages=IPYKERNEL, kernels={"my-py": conda.spec("My Python")})
    conda.env("ronly", packages=IPYKERNEL, kernels={"ir": conda.spec("R", "R")})
    assert sorted(conda.kernels()) == [
        "both-ir",
        "both-python3",
        "custom-my-py",
        "ronly-ir",
        "ronly-python3",
    ]


def test_base_env_from_root_prefix_sources(conda: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    root = conda.make_root(kernels={"python3": conda.spec()})
    conda.env("one", kernels={"python3": conda.spec()})
    monkeypatch.delenv("MAMBA_ROOT_PREFIX")
    assert conda.kernels() == {}  # nothing announces the root
    for var, value in [
        ("CONDA_EXE", root / "bin" / "conda"),
        ("CONDA_PYTHON_EXE", root / "bin" / "python"),
        ("MAMBA_ROOT_PREFIX", root),
    ]:
        monkeypatch.setenv(var, str(value))
        kernels = conda.kernels()
        assert sorted(kernels) == ["base-python3", "one-python3"], var
        assert kernels["base-python3"]["display_name"] == "Python 3 (conda: base)"
        assert kernels["base-python3"]["metadata"]["conda"]["is_base"] is True
        monkeypatch.delenv(var)
    assert sorted(conda.kernels(root_prefix=str(root))) == ["base-python3", "one-python3"]
    monkeypatch.setenv("MAMBA_ROOT_PREFIX", str(root))
    assert sorted(conda.kernels(include_base=False)) == ["one-python3"]


def test_two_roots_two_bases_told_apart(conda: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A conda install and a micromamba root: both are "base"; names and labels differ."""
    conda.make_root(packages=IPYKERNEL)
    other = conda.make_env(conda.home / "micromamba", packages=IPYKERNEL)
    monkeypatch.setenv("CONDA_EXE", str(conda.root / "condabin" / "conda"))
    monkeypatch.setenv("MAMBA_ROOT_PREFIX", str(other))
    conda.environments_txt(conda.root, other)  # listed again: still once each
    kernels = conda.kernels()
    assert len(kernels) == 2
    first = kernels["base-python3"]
    assert first["display_name"] == "Python 3 (conda: base)"
    assert first["metadata"]["conda"]["env_prefix"] == str(conda.root)
    (second_name,) = set(kernels) - {"base-python3"}
    assert second_name.startswith("base-python3-")
    second = kernels[second_name]
    assert second["display_name"] == "Python 3 (conda: ~/micromamba)"
    assert second["metadata"]["conda"]["is_base"] is True
    assert second["metadata"]["conda"]["env_prefix"] == str(other)


def test_environments_txt_path_env(conda: Any) -> None:
    project_env = conda.make_env(conda.home / "proj" / "venv", kernels={"python3": conda.spec()})
    elsewhere = conda.make_env(conda.tmp / "opt" / "tools", packages=IPYKERNEL)
    conda.environments_txt(project_env, "", elsewhere)
    kernels = conda.kernels()
    assert sorted(kernels) == ["tools-python3", "venv-python3"]
    # Not in an envs dir: the display name shows where it is.
    assert kernels["venv-python3"]["display_name"] == "Python 3 (conda: ~/proj/venv)"
    assert kernels["tools-python3"]["display_name"] == f"Python 3 (conda: {elsewhere})"
    assert kernels["venv-python3"]["metadata"]["conda"]["env_prefix"] == str(project_env)


def test_envs_dirs_sources(conda: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = {n: conda.tmp / n for n in ("pathvar", "dirsvar", "rc", "rcflow", "xdg", "sys", "rcd")}
    for name, folder in dirs.items():
        conda.make_env(folder / f"env-{name}", packages=IPYKERNEL)
    conda.make_env(conda.home / ".conda" / "envs" / "env-userdir", packages=IPYKERNEL)
    monkeypatch.setenv("CONDA_ENVS_PATH", f"{dirs['pathvar']}{os.pathsep}/nonexistent")
    monkeypatch.setenv("CONDA_ENVS_DIRS", str(dirs["dirsvar"]))
    monkeypatch.setenv("RCFLOW", str(dirs["rcflow"]))
    conda.condarc(
        f"""# my condarc
channels:
  - conda-forge
envs_dirs:   # where envs go
  - {dirs["rc"]}
  - "~/.conda/envs"
"""
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(conda.tmp / "xdgconf"))
    conda.condarc(
        f"envs_dirs: [{dirs['xdg']}, '$RCFLOW']\n", conda.tmp / "xdgconf" / "conda" / "condarc"
    )
    conda.condarc(f"envs_dirs:\n- {dirs['sys']}\n", conda.system / ".condarc")
    conda.condarc(
        f"envs_path:\n  - {dirs['rcd']}\n", conda.home / ".conda" / "condarc.d" / "extra.yml"
    )
    names = sorted(conda.kernels())
    assert names == sorted(f"env-{n}-python3" for n in [*dirs, "userdir"]), names


def test_condarc_named_by_condarc_var(conda: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conda.make_env(conda.tmp / "special" / "sp", packages=IPYKERNEL)
    rc = conda.condarc(f"envs_dirs: {conda.tmp / 'special'}\n", conda.tmp / "my.rc")
    monkeypatch.setenv("CONDARC", str(rc))
    assert list(conda.kernels()) == ["sp-python3"]


def test_config_envs_dirs(conda: Any) -> None:
    conda.make_env(conda.tmp / "team" / "shared", packages=IPYKERNEL)
    assert list(conda.kernels(envs_dirs=[str(conda.tmp / "team")])) == ["shared-python3"]


def test_folders_that_are_not_envs_are_ignored(conda: Any) -> None:
    conda.make_root()
    (conda.root / "envs" / "notanenv" / "conda-meta").mkdir(parents=True)  # no history
    (conda.root / "envs" / "stray-file").write_text("x")
    (conda.root / "envs" / ".conda_envs_dir_test").write_text("")
    conda.env("real", packages=IPYKERNEL)
    assert list(conda.kernels()) == ["real-python3"]


def test_same_env_found_twice_is_listed_once(conda: Any) -> None:
    conda.make_root()
    prefix = conda.env("dup", packages=IPYKERNEL)
    link = conda.tmp / "link-to-envs"
    link.symlink_to(conda.root / "envs")
    conda.environments_txt(prefix, prefix, link / "dup")
    kernels = conda.kernels(envs_dirs=[str(link)])
    assert list(kernels) == ["dup-python3"]
    # Configured envs dirs precede <root>/envs, so the env is reported under that path.
    assert kernels["dup-python3"]["metadata"]["conda"]["env_prefix"] == str(link / "dup")
    assert list(conda.kernels()) == ["dup-python3"]
    assert kernels["dup-python3"]["metadata"]["conda"]["env_prefix"] != str(prefix)


def test_colliding_names_are_disambiguated_stably(conda: Any) -> None:
    conda.make_root()
    first = conda.env("proj", packages=IPYKERNEL)
    second = conda.make_env(conda.home / ".conda" / "envs" / "proj", packages=IPYKERNEL)
    third = conda.make_env(conda.tmp / "work" / "PROJ", packages=IPYKERNEL)
    conda.environments_txt(third)
    kernels = conda.kernels()
    assert len(kernels) == 3
    # <root>/envs precedes ~/.conda/envs (conda's order), so it keeps the plain name.
    assert kernels["proj-python3"]["metadata"]["conda"]["env_prefix"] == str(first)
    by_prefix = {a["metadata"]["conda"]["env_prefix"]: n for n, a in kernels.items()}
    assert by_prefix[str(second)].startswith("proj-python3-")
    assert by_prefix[str(third)].startswith("proj-python3-")
    # Display names differ too: the later env of the same name is shown by its path.
    assert kernels["proj-python3"]["display_name"] == "Python 3 (conda: proj)"
    second_name = kernels[by_prefix[str(second)]]["display_name"]
    assert second_name == "Python 3 (conda: ~/.conda/envs/proj)"
    # (Listed by path only, outside any envs dir: always shown by its path.)
    assert kernels[by_prefix[str(third)]]["display_name"] == f"Python 3 (conda: {third})"
    assert len({a["display_name"] for a in kernels.values()}) == 3
    _discover.clear_memory()
    assert conda.kernels() == kernels  # same names on every scan
    assert all(provider_name_ok(n) for n in kernels)


def provider_name_ok(name: str) -> bool:
    from kernel_mgmt.kernelspec import NAME_RE

    return bool(NAME_RE.match(name))


def test_env_names_are_sanitized(conda: Any) -> None:
    conda.make_root()
    conda.env("My Env+1", packages=IPYKERNEL)
    kernels = conda.kernels()
    assert list(kernels) == ["my-env-1-python3"]
    assert kernels["my-env-1-python3"]["display_name"] == "Python 3 (conda: My Env+1)"
    assert kernels["my-env-1-python3"]["metadata"]["conda"]["env_name"] == "My Env+1"


def test_env_filter_and_name_format(conda: Any) -> None:
    conda.make_root()
    conda.env("keep-a", kernels={"python3": conda.spec()})
    conda.env("drop-b", kernels={"python3": conda.spec()})
    # env_filter hides what it matches (as nb_conda_kernels' env_filter does).
    assert list(conda.kernels(env_filter="/drop-")) == ["keep-a-python3"]
    assert list(conda.kernels(env_filter="envs/(drop|other)-b$")) == ["keep-a-python3"]
    assert sorted(conda.kernels(name_format="{kernel}.{env}")) == [
        "python3.drop-b",
        "python3.keep-a",
    ]


def test_current_env_skipped_unless_asked(conda: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conda.make_root()
    current = conda.env("current", packages=IPYKERNEL)
    conda.env("other", packages=IPYKERNEL)
    monkeypatch.setattr(sys, "prefix", str(current))
    assert list(conda.kernels()) == ["other-python3"]
    assert sorted(conda.kernels(include_current=True)) == ["current-python3", "other-python3"]


def test_bad_input_is_skipped_with_a_warning_naming_it(
    conda: Any, caplog: pytest.LogCaptureFixture
) -> None:
    conda.make_root()
    conda.env("good", kernels={"python3": conda.spec()})
    conda.env("broken", kernels={"bad": "{not json", "python3": conda.spec()})
    # A mistyped key (jupyter_client rejects it too; a missing language is fine, as there).
    conda.env("badkey", kernels={"numlang": {"argv": ["x"], "display_name": "X", "language": 3}})
    gone = conda.tmp / "deleted-env"
    listed = conda.make_env(conda.tmp / "listed", packages=IPYKERNEL)
    txt = conda.environments_txt("relative/path", gone, listed)
    txt.write_bytes(txt.read_bytes() + b"/opt/\xff\xfe-not-utf8\n")
    rc = conda.home / ".condarc"
    rc.write_bytes(b"envs_dirs:\n  - \xff\xfe\n")
    (conda.home / ".config" / "conda").mkdir(parents=True)
    (conda.home / ".config" / "conda" / "condarc").mkdir()  # a folder: cannot be read
    with caplog.at_level(logging.WARNING, logger="kernel_mgmt_provider_conda"):
        kernels = conda.kernels()
    assert sorted(kernels) == ["broken-python3", "good-python3", "listed-python3"]
    messages = "\n".join(warnings_of(caplog))
    assert f"{txt} line 1: 'relative/path' is not an absolute path" in messages
    assert f"{gone} (listed in {txt} line 2) does not exist" in messages
    assert f"{txt} line 4: not UTF-8 text; skipped" in messages
    assert f"cannot read conda config {rc}" in messages
    assert f"cannot read conda config {conda.home / '.config' / 'conda' / 'condarc'}" in messages
    broken_json = conda.root / "envs" / "broken" / "share" / "jupyter" / "kernels" / "bad"
    assert str(broken_json / "kernel.json") in messages
    numlang = conda.root / "envs" / "badkey" / "share" / "jupyter" / "kernels" / "numlang"
    assert f"{numlang / 'kernel.json'}: 'language' must be a string" in messages
    assert len(warnings_of(caplog)) == 7


#: Runs discovery in a child process, first dropping to the given uid/gid when it differs
#: from the current one (root reads every file whatever its mode). Everything it needs is
#: imported before that: the interpreter's own files may not be readable by that user.
_UNPRIVILEGED_DISCOVERY = """
import json, logging, os, sys
import kernel_mgmt.kernelspec
import kernel_mgmt_provider_conda as provider
from kernel_mgmt_provider_conda import _condarc, _discover

top, rc, uid, gid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if os.geteuid() != uid:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
_condarc.SYSTEM_DIRS = (os.path.join(top, "etc-conda"),)
messages = []


class Collect(logging.Handler):
    def emit(self, record):
        messages.append(record.getMessage())


logging.getLogger("kernel_mgmt_provider_conda").addHandler(Collect())
try:
    open(rc, "rb").close()
    readable = True
except PermissionError:
    readable = False
provider.load_config({})
names = sorted(name for name, _ in provider.find_kernels())
print(json.dumps({"euid": os.geteuid(), "rc_readable": readable, "kernels": names,
                  "warnings": messages}))
"""


def test_unreadable_condarc_permissions(conda: Any, tmp_path: Path) -> None:
    """A .condarc (and a condarc.d folder) its user may not read (mode 000) is skipped
    with a warning naming it; everything else is listed.

    Root reads any file whatever its mode, so as root the discovery runs in a child process
    that drops to the ``nobody`` user first (in a folder that user owns: pytest's tmp_path
    sits under a root-only folder); otherwise in a child running as the current user.
    """
    if sys.platform == "win32":
        pytest.skip("POSIX file modes")
    import shutil
    import tempfile

    as_root = os.geteuid() == 0
    if as_root:
        import pwd

        try:
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
        except KeyError:
            uid = gid = 65534
        top = Path(tempfile.mkdtemp(prefix="kernel-mgmt-conda-"))
    else:
        uid, gid = os.geteuid(), os.getegid()
        top = tmp_path / "world"
        top.mkdir()
    try:
        home, root = top / "home", top / "miniconda3"
        (top / "etc-conda").mkdir()
        conda.make_env(root, packages=IPYKERNEL)
        conda.make_env(root / "envs" / "listed", packages=IPYKERNEL)
        conda.make_env(top / "hidden" / "secret", packages=IPYKERNEL)
        conda.make_env(top / "visible" / "shown", packages=IPYKERNEL)
        rc = home / ".condarc"
        rc.parent.mkdir(parents=True)
        rc.write_text(f"envs_dirs: [{top / 'hidden'}]\n")
        readable_rc = home / ".config" / "conda" / "condarc"
        readable_rc.parent.mkdir(parents=True)
        readable_rc.write_text(f"envs_dirs:\n  - {top / 'visible'}\n")
        rc_d = home / ".conda" / "condarc.d"  # a condarc.d folder that cannot be listed
        rc_d.mkdir(parents=True)
        (rc_d / "more.yml").write_text(f"envs_dirs: [{top / 'hidden'}]\n")
        if as_root:
            for dirpath, dirnames, filenames in os.walk(top):
                for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                    os.chown(name, uid, gid)
        rc.chmod(0)
        rc_d.chmod(0)
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CONDA", "MAMBA", "_CE_")) and k != "XDG_CONFIG_HOME"
        }
        environ.update(
            HOME=str(home),
            MAMBA_ROOT_PREFIX=str(root),
            KERNEL_MGMT_CONDA_CACHE_DIR=str(top / "cache"),
        )
        out = subprocess.run(
            [sys.executable, "-c", _UNPRIVILEGED_DISCOVERY, str(top), str(rc), str(uid), str(gid)],
            env=environ,
            cwd=top,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
    finally:
        if as_root:
            shutil.rmtree(top, ignore_errors=True)
    assert result["euid"] == uid
    assert result["rc_readable"] is False  # the file really is unreadable for that user
    # The rest is listed: the root, its envs, the envs dir of the readable .condarc.
    assert result["kernels"] == ["base-python3", "listed-python3", "shown-python3"]
    problems = [m for m in result["warnings"] if str(rc) in m]
    assert len(problems) == 1, result["warnings"]
    assert f"cannot read conda config {rc}: Permission denied; skipped" in problems[0]
    assert f"cannot read conda config folder {rc_d}{os.sep}; skipped" in result["warnings"]
    assert len(result["warnings"]) == 2, result["warnings"]


def test_discovery_spawns_nothing(conda: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conda.make_root(packages=IPYKERNEL)
    conda.env("a", kernels={"python3": conda.spec()})

    def no_spawn(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"discovery spawned a process: {args}")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_spawn)
    assert sorted(conda.kernels()) == ["a-python3", "base-python3"]


def test_yielded_attributes_are_copies(conda: Any) -> None:
    conda.make_root()
    conda.env("a", kernels={"python3": conda.spec()})
    first = conda.kernels()
    first["a-python3"]["metadata"]["conda"]["env_name"] = "tampered"
    first["a-python3"]["argv"].append("x")
    again = dict(provider.find_kernels())
    assert again["a-python3"]["metadata"]["conda"]["env_name"] == "a"
    assert again["a-python3"]["argv"][-1] == "{connection_file}"


def test_find_kernels_through_the_finder(conda: Any) -> None:
    from kernel_mgmt.discovery import KernelFinder

    conda.make_root()
    conda.env("fenv", kernels={"python3": conda.spec()})
    finder = KernelFinder([provider], config={"conda": {"include_base": False}}, timeout=PATIENT)
    found = dict(finder.find_kernels())
    assert "conda/fenv-python3" in found
    assert found["conda/fenv-python3"]["display_name"] == "Python 3 (conda: fenv)"


def test_problems_listed_by_every_finder_even_from_cache(conda: Any) -> None:
    """A broken kernelspec is a problem of the conda provider in each finder's listing,
    also when the second finder is answered from the cache (no new scan)."""
    from kernel_mgmt.discovery import KernelFinder

    conda.make_root()
    conda.env("good", kernels={"python3": conda.spec()})
    conda.env("broken", kernels={"bad": "{not json"})
    bad = conda.root / "envs" / "broken" / "share" / "jupyter" / "kernels" / "bad" / "kernel.json"
    for _ in range(2):
        finder = KernelFinder(
            [provider], config={"conda": {"include_base": False}}, timeout=PATIENT
        )
        assert "conda/good-python3" in dict(finder.find_kernels())
        messages = [p.message for p in finder.problems if p.provider == "conda"]
        assert any(str(bad) in m for m in messages), messages


def test_finder_problems_whatever_the_apps_logging(
    conda: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Inside a finder, a problem is the provider's (report_problem), logged once by the
    finder and not by the provider too; an application that silences warnings still gets it."""
    from kernel_mgmt.discovery import KernelFinder

    conda.make_root()
    conda.env("broken", kernels={"bad": "{not json"})
    bad = conda.root / "envs" / "broken" / "share" / "jupyter" / "kernels" / "bad" / "kernel.json"
    logging.disable(logging.WARNING)
    try:
        finder = KernelFinder(
            [provider], config={"conda": {"include_base": False}}, timeout=PATIENT
        )
        assert list(finder.find_kernels()) == []
    finally:
        logging.disable(logging.NOTSET)
    assert any(str(bad) in p.message for p in finder.problems), finder.problems
    with caplog.at_level(logging.WARNING):
        finder = KernelFinder(
            [provider], config={"conda": {"include_base": False}}, timeout=PATIENT
        )
        assert list(finder.find_kernels()) == []  # answered from the cache
    assert warnings_of(caplog) == []
    finder_logs = [r.getMessage() for r in caplog.records if r.name == "kernel_mgmt.discovery"]
    assert sum(str(bad) in m for m in finder_logs) == 1, finder_logs


def test_import_is_light() -> None:
    code = (
        "import sys, kernel_mgmt_provider_conda\n"
        "heavy = {'jsonschema', 'zmq', 'platformdirs', 'kernel_mgmt.subproc.launcher',"
        " 'kernel_mgmt.kernelspec', 'subprocess', 'asyncio', 'logging', 'kernel_mgmt.discovery',"
        " 'kernel_mgmt_provider_conda._util'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_executable_in_home_path_shows_relative(conda: Any) -> None:
    """An env under HOME but outside envs dirs is shown with ~ (and the real path in metadata)."""
    env = conda.make_env(Path(conda.home) / "x" / "y", packages=IPYKERNEL)
    conda.environments_txt(env)
    attrs = conda.kernels()["y-python3"]
    assert attrs["display_name"] == "Python 3 (conda: ~/x/y)"


def test_kernelspec_names_follow_the_spec_provider_rules(
    conda: Any, caplog: pytest.LogCaptureFixture
) -> None:
    conda.make_root()
    prefix = conda.env(
        "rules",
        kernels={"Julia-1.10": conda.spec("Julia", "julia"), "bad name!": conda.spec("X")},
    )
    with caplog.at_level(logging.WARNING, logger="kernel_mgmt_provider_conda"):
        kernels = conda.kernels()
    assert sorted(kernels) == ["rules-julia-1.10"]  # folder names are lower-cased
    bad = prefix / "share" / "jupyter" / "kernels" / "bad name!"
    assert any(str(bad) in m and "invalid kernelspec folder name" in m for m in warnings_of(caplog))
