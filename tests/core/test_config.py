"""Config files: locations, merge order, schema errors naming the file and the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernel_mgmt import config
from kernel_mgmt.config import ConfigError, load_config, merge
from kernel_mgmt.discovery import KernelFinder


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("KERNEL_MGMT_CONFIG", raising=False)
    return tmp_path


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_missing_files_are_fine() -> None:
    assert load_config() == {}


def test_default_locations(tmp_path: Path) -> None:
    import platformdirs

    paths = config.config_paths()
    assert paths[0] == os.path.join(sys.prefix, "etc", "kernel_mgmt", "config.toml")
    assert paths[1] == os.path.join(
        platformdirs.user_config_dir("kernel_mgmt", appauthor=False), "config.toml"
    )
    assert paths[1].startswith(str(tmp_path / "xdg"))


@pytest.mark.parametrize(
    ("xdg", "home"),
    [
        ("abs", "abs"),
        (None, "abs"),
        ("", "abs"),
        ("relative/dir", "abs"),
        (None, "rel"),
        (None, ""),
    ],
)
def test_user_config_dir_matches_platformdirs(tmp_path, monkeypatch, xdg, home) -> None:
    import platformdirs

    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    if xdg is not None:
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "x") if xdg == "abs" else xdg)
    monkeypatch.setenv("HOME", {"abs": str(tmp_path / "home"), "rel": "rel/home", "": ""}[home])
    expected = platformdirs.user_config_dir("kernel_mgmt", appauthor=False)
    assert config._user_config_dir() == expected


def test_user_file_and_env_file_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path / "xdg" / "kernel_mgmt" / "config.toml",
        '[providers]\ndeny = ["conda"]\ntimeout = 5\n[conda]\nenvs = ["/a"]\ndepth = 1\n',
    )
    explicit = write(
        tmp_path / "explicit.toml", '[providers]\ntimeout = 2.5\n[conda]\nenvs = ["/b"]\n'
    )
    monkeypatch.setenv("KERNEL_MGMT_CONFIG", explicit)
    assert load_config() == {
        "providers": {"deny": ["conda"], "timeout": 2.5},
        "conda": {"envs": ["/b"], "depth": 1},
    }


def test_env_file_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = str(tmp_path / "nope.toml")
    monkeypatch.setenv("KERNEL_MGMT_CONFIG", missing)
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config()
    assert info.value.path == missing


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("[providers]\ntimeout = 'slow'\n", "providers.timeout", "not of type 'number'"),
        ("[providers]\ntimeout = 0\n", "providers.timeout", "less than or equal"),
        ("[providers]\nallow = [1]\n", "providers.allow.0", "not of type 'string'"),
        ("[providers]\nalow = ['x']\n", "providers.alow", "unknown key"),
        ("[providers]\ndeny = ['Has/Slash']\n", "providers.deny.0", "does not match"),
        ("[Conda]\nx = 1\n", "Conda", "not a provider id"),
        ("conda = 3\n", "conda", "not of type 'object'"),
        ("[providers.timeouts]\nconda = 'long'\n", "providers.timeouts.conda", "'number'"),
        ("[providers.timeouts]\nconda = -2\n", "providers.timeouts.conda", "less than or"),
        ("[providers.timeouts]\nBad_Id = 2\n", "providers.timeouts.Bad_Id", "not a provider"),
        ("[providers]\ntimeouts = 5\n", "providers.timeouts", "not of type 'object'"),
    ],
)
def test_invalid_file_names_file_and_key(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config([path])
    assert info.value.path == path
    assert info.value.key == key
    assert path in str(info.value) and repr(key) in str(info.value)
    assert fragment in str(info.value)


def test_bad_toml_names_file(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.toml", "[providers\n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config([path])
    assert str(info.value).startswith(path)


def test_merge_is_deep_and_does_not_mutate() -> None:
    base = {"a": {"x": 1, "y": {"z": 1}}, "b": 1}
    out = merge(base, {"a": {"y": {"w": 2}}, "b": [2]})
    assert out == {"a": {"x": 1, "y": {"z": 1, "w": 2}}, "b": [2]}
    assert base == {"a": {"x": 1, "y": {"z": 1}}, "b": 1}


def test_from_entrypoints_reads_config_and_passes_it(tmp_path: Path, monkeypatch) -> None:
    explicit = write(
        tmp_path / "c.toml", '[providers]\nallow = ["spec"]\ntimeout = 3\n[spec]\nx = 1\n'
    )
    monkeypatch.setenv("KERNEL_MGMT_CONFIG", explicit)
    monkeypatch.delenv("KERNEL_MGMT_PROVIDERS", raising=False)
    finder = KernelFinder.from_entrypoints()
    assert finder.config["spec"] == {"x": 1}
    assert finder.timeout == 3
    statuses = {p.id: p.status for p in finder.providers}
    assert statuses["spec"] == "ok"
    assert statuses["pyimport"] == "disabled"


def test_per_provider_timeouts_from_a_file(tmp_path: Path, monkeypatch) -> None:
    explicit = write(
        tmp_path / "c.toml", "[providers]\ntimeout = 4\n[providers.timeouts]\nconda = 30.5\n"
    )
    monkeypatch.setenv("KERNEL_MGMT_CONFIG", explicit)
    finder = KernelFinder.from_entrypoints(entry_points=[])
    assert (finder.timeout_for("conda"), finder.timeout_for("spec")) == (30.5, 4.0)


def test_bad_config_fails_from_entrypoints(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(
        "KERNEL_MGMT_CONFIG", write(tmp_path / "c.toml", "[providers]\ntimeout = -1\n")
    )
    with pytest.raises(ConfigError, match=r"providers\.timeout"):
        KernelFinder.from_entrypoints()


def test_jsonschema_only_imported_when_a_file_exists(tmp_path: Path) -> None:
    code = (
        "import sys; from kernel_mgmt.config import load_config; load_config(); "
        "print('jsonschema' in sys.modules)"
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("KERNEL_MGMT_CONFIG", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
    env["KERNEL_MGMT_CONFIG"] = write(tmp_path / "c.toml", "[spec]\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr


def test_undecodable_file_names_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[spec]\nname = "caf\xe9"\n')  # Latin-1, not UTF-8
    with pytest.raises(ConfigError, match="UTF-8") as info:
        load_config([str(path)])
    assert info.value.path == str(path)


def test_env_file_that_is_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERNEL_MGMT_CONFIG", str(tmp_path))
    with pytest.raises(ConfigError, match="not a file") as info:
        load_config()
    assert info.value.path == str(tmp_path)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"timeout": "slow"}, "providers.timeout"),
        ({"timeout": 0}, "providers.timeout"),
        ({"timeout": True}, "providers.timeout"),
        ({"allow": "spec"}, "providers.allow"),  # a string would match by substring
        ({"deny": ["spec", 3]}, "providers.deny"),
        ({"timeouts": 5}, "providers.timeouts"),
        ({"timeouts": {"conda": "long"}}, "providers.timeouts.conda"),
        ({"timeouts": {"conda": 0}}, "providers.timeouts.conda"),
    ],
)
def test_config_given_in_code_is_checked_too(section: dict, key: str) -> None:
    """A mapping passed to KernelFinder (not read from a file) gets a clear error as well."""
    with pytest.raises(ConfigError) as info:
        KernelFinder([], config={"providers": section})
    assert info.value.key == key and key in str(info.value)
    with pytest.raises(ConfigError):
        KernelFinder.from_entrypoints({"providers": section}, entry_points=[])
