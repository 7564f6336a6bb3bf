"""The kernel.json format: light reading, full validation, lookup rules, write/install/remove."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernel_mgmt import kernelspec
from kernel_mgmt.kernelspec import (
    KERNEL_SPEC_SCHEMA,
    NAME_RE,
    InvalidKernelSpec,
    NoSuchKernelSpec,
    find_kernel_spec,
    find_kernel_specs,
    install_kernel_spec,
    iter_kernel_specs,
    kernel_attributes,
    read_kernel_spec,
    remove_kernel_spec,
    validate_kernel_spec,
    write_kernel_spec,
)

GOOD = {
    "argv": ["python", "-m", "k", "-f", "{connection_file}"],
    "display_name": "K",
    "language": "python",
}


def make(root: Path, name: str, spec: dict | str | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    text = spec if isinstance(spec, str) else json.dumps(GOOD if spec is None else spec)
    (d / "kernel.json").write_text(text)
    return d


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jp"))


def test_read_keeps_unknown_keys(tmp_path: Path) -> None:
    d = make(tmp_path, "k", {**GOOD, "x-vendor": {"a": 1}, "metadata": {"m": 1}})
    spec = read_kernel_spec(str(d))
    assert spec["x-vendor"] == {"a": 1}
    validate_kernel_spec(spec)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ({"display_name": "K", "language": "x"}, "missing required key 'argv'"),
        ({**GOOD, "argv": []}, "'argv' is empty"),
        ({**GOOD, "argv": "python -m x"}, "'argv' must be a list of strings"),
        ({**GOOD, "argv": ["python", 1]}, "'argv' must be a list of strings"),
        ({**GOOD, "argv": None}, "'argv' must be a list of strings, not null"),
        ({**GOOD, "language": 3}, "'language' must be a string"),
        ({**GOOD, "display_name": None}, "'display_name' must be a string"),
        ({**GOOD, "env": None}, "'env'"),
        ({**GOOD, "metadata": None}, "'metadata' must be an object"),
        ({**GOOD, "kernel_protocol_version": 5}, "'kernel_protocol_version' must be a string"),
        ({**GOOD, "interrupt_mode": "sigint"}, "'interrupt_mode'"),
        ({**GOOD, "interrupt_mode": None}, "'interrupt_mode'"),
        ({**GOOD, "env": {"A": 1}}, "'env'"),
        ({**GOOD, "metadata": []}, "'metadata' must be an object"),
        ({**GOOD, "metadata": {"launch_parameter_schema": True}}, "launch_parameter_schema"),
    ],
)
def test_invalid_specs_name_the_file(tmp_path: Path, spec, fragment: str) -> None:
    d = make(tmp_path, "bad", spec)
    with pytest.raises(InvalidKernelSpec) as info:
        read_kernel_spec(str(d))
    assert info.value.path == str(d / "kernel.json")
    assert str(d / "kernel.json") in str(info.value)
    assert fragment in str(info.value)
    if not isinstance(spec, str):  # the schema agrees with the light check
        with pytest.raises(InvalidKernelSpec):
            validate_kernel_spec(spec, "p")


def test_missing_keys_read_with_jupyter_clients_defaults(tmp_path: Path) -> None:
    """jupyter_client lists a kernel.json without language, display_name or argv (its traits
    default to "" and []): reading accepts them too, the attributes fill in defaults, and
    only writing (a new spec) insists on all three."""
    argv = GOOD["argv"]
    nolang = make(tmp_path, "nolang", {"argv": argv, "display_name": "Echo"})
    attrs = kernel_attributes(read_kernel_spec(str(nolang)), str(nolang))
    assert (attrs["language"], attrs["language_info"], attrs["argv"]) == ("", {"name": ""}, argv)
    noname = make(tmp_path, "NoName", {"argv": argv, "language": "x"})
    assert kernel_attributes(read_kernel_spec(str(noname)), str(noname))["display_name"] == "NoName"
    noargv = make(tmp_path, "noargv", {"display_name": "N", "language": "x"})
    with pytest.raises(InvalidKernelSpec, match=r"missing required key .argv. \(the command line"):
        read_kernel_spec(str(noargv))  # launchable by default: nothing to start
    spec = read_kernel_spec(str(noargv), launchable=False)
    assert kernel_attributes(spec, str(noargv))["argv"] == []
    empty = make(tmp_path, "empty", "{}")
    attrs = kernel_attributes(read_kernel_spec(str(empty), launchable=False), str(empty))
    assert {k: attrs[k] for k in ("argv", "display_name", "language")} == {
        "argv": [],
        "display_name": "empty",
        "language": "",
    }
    for missing in ("display_name", "language", "argv"):
        partial = {k: v for k, v in GOOD.items() if k != missing}
        with pytest.raises(InvalidKernelSpec, match=f"missing required key '{missing}'"):
            write_kernel_spec(str(tmp_path / "out"), partial)
    assert not (tmp_path / "out").exists()


def test_interrupt_mode_any_case_as_jupyter_client(tmp_path: Path) -> None:
    """jupyter_client's interrupt_mode is case-insensitive: "Message" is read as "message"."""
    d = make(tmp_path, "k", {**GOOD, "interrupt_mode": "Message"})
    assert read_kernel_spec(str(d))["interrupt_mode"] == "message"
    write_kernel_spec(str(tmp_path / "out"), {**GOOD, "interrupt_mode": "SIGNAL"})
    assert json.loads((tmp_path / "out" / "kernel.json").read_text())["interrupt_mode"] == "signal"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidKernelSpec, match="cannot read"):
        read_kernel_spec(str(tmp_path))


def test_validate_names_the_key() -> None:
    with pytest.raises(InvalidKernelSpec, match=r"^f\.json: at env/A: 1 is not of type 'string'"):
        validate_kernel_spec({**GOOD, "env": {"A": 1}}, "f.json")
    assert KERNEL_SPEC_SCHEMA["required"] == ["argv", "display_name", "language"]


def test_name_rule() -> None:
    assert NAME_RE.match("python3.11_x-y")
    for bad in ("has space", "ü", "a/b", "", "Upper"):
        assert not NAME_RE.match(bad)
    assert kernelspec.is_valid_kernel_name("Python3")


def test_first_match_wins_and_case_insensitive(tmp_path: Path) -> None:
    high, low = tmp_path / "high", tmp_path / "low"
    make(high, "Shared", {**GOOD, "display_name": "high"})
    make(low, "shared", {**GOOD, "display_name": "low"})
    make(low, "only-low")
    (high / "not-a-kernel").mkdir()
    (high / "file.txt").write_text("")
    found = find_kernel_specs([str(high), str(low), str(tmp_path / "missing")])
    assert found == {"shared": str(high / "Shared"), "only-low": str(low / "only-low")}
    assert find_kernel_spec("SHARED", [str(high), str(low)]) == str(high / "Shared")
    with pytest.raises(NoSuchKernelSpec, match="'nope'"):
        find_kernel_spec("nope", [str(high)])


def test_bad_folder_names_reported(tmp_path: Path) -> None:
    make(tmp_path, "has space")
    make(tmp_path, "fine")
    skipped: list = []
    assert list(find_kernel_specs([str(tmp_path)], skipped)) == ["fine"]
    assert skipped == [(str(tmp_path / "has space"), skipped[0][1])]
    skipped2: list = []
    assert [n for n, _, _ in iter_kernel_specs([str(tmp_path)], skipped2)] == ["fine"]
    assert skipped2 == skipped


def test_iter_kernel_specs_yields_errors_in_place(tmp_path: Path) -> None:
    high, low = tmp_path / "high", tmp_path / "low"
    make(high, "x", "{broken")
    make(low, "x")  # shadowed by the broken one, as in jupyter_client
    make(low, "y")
    out = list(iter_kernel_specs([str(high), str(low)]))
    assert [(n, d) for n, d, _ in out] == [("x", str(high / "x")), ("y", str(low / "y"))]
    assert isinstance(out[0][2], InvalidKernelSpec) and out[1][2] == GOOD


def test_kernel_attributes_defaults() -> None:
    attrs = kernel_attributes({**GOOD, "extra": 1}, "/r")
    assert attrs == {
        **GOOD,
        "extra": 1,
        "resource_dir": "/r",
        "interrupt_mode": "signal",
        "env": {},
        "metadata": {},
        "language_info": {"name": "python"},
    }


def test_write_then_read(tmp_path: Path) -> None:
    dest = write_kernel_spec(str(tmp_path / "new"), {**GOOD, "env": {"A": "1"}})
    assert read_kernel_spec(dest)["env"] == {"A": "1"}
    with pytest.raises(InvalidKernelSpec):
        write_kernel_spec(str(tmp_path / "bad"), {"argv": []})
    assert not (tmp_path / "bad").exists()


def test_install_user_prefix_replace_remove(tmp_path: Path) -> None:
    src = make(tmp_path / "src", "MyKernel")
    (src / "logo-64x64.png").write_bytes(b"png")
    dest = install_kernel_spec(str(src), user=True)
    assert dest == str(tmp_path / "user" / "kernels" / "mykernel")
    assert (Path(dest) / "logo-64x64.png").read_bytes() == b"png"
    # replaced by default (jupyter_client's behaviour), refused with replace=False
    install_kernel_spec(str(src), user=True)
    with pytest.raises(FileExistsError, match="replace=True"):
        install_kernel_spec(str(src), user=True, replace=False)
    prefixed = install_kernel_spec(str(src), kernel_name="other", prefix=str(tmp_path / "pfx"))
    assert prefixed == str(tmp_path / "pfx" / "share" / "jupyter" / "kernels" / "other")
    with pytest.raises(ValueError, match="invalid kernel name"):
        install_kernel_spec(str(src), kernel_name="bad name", user=True)
    with pytest.raises(ValueError, match="not both"):
        install_kernel_spec(str(src), user=True, prefix=str(tmp_path))
    assert find_kernel_specs()["mykernel"] == dest
    assert remove_kernel_spec("MyKernel") == dest
    assert not os.path.exists(dest)
    with pytest.raises(NoSuchKernelSpec):
        remove_kernel_spec("mykernel")


def test_install_refuses_invalid_source(tmp_path: Path) -> None:
    src = make(tmp_path / "src", "k", {"argv": ["x"], "language": ["python"]})
    with pytest.raises(InvalidKernelSpec, match="'language' must be a string"):
        install_kernel_spec(str(src), user=True)
    assert not (tmp_path / "user" / "kernels" / "k").exists()


def test_jupyter_client_sees_what_we_install(tmp_path: Path) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    src = make(tmp_path / "src", "ours")
    dest = install_kernel_spec(str(src), user=True)
    specs = KernelSpecManager().find_kernel_specs()
    assert specs["ours"] == dest


def test_reading_does_not_import_jsonschema(tmp_path: Path) -> None:
    make(tmp_path / "jp" / "kernels", "k")
    code = (
        "import sys; from kernel_mgmt import kernelspec as k;"
        "[k.read_kernel_spec(d) for d in k.find_kernel_specs().values()];"
        "print('jsonschema' in sys.modules, 'shutil' in sys.modules)"
    )
    env = {**os.environ, "JUPYTER_PATH": str(tmp_path / "jp")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_write_unserialisable_spec_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "new"
    with pytest.raises(InvalidKernelSpec, match="JSON") as info:
        write_kernel_spec(str(dest), {**GOOD, "metadata": {"tags": {"a", "b"}}})
    assert info.value.path == str(dest / "kernel.json")
    assert not dest.exists()  # no folder, no kernel.json.tmp
    existing = write_kernel_spec(str(tmp_path / "old"), GOOD)
    with pytest.raises(InvalidKernelSpec):
        write_kernel_spec(existing, {**GOOD, "display_name": object()})
    assert read_kernel_spec(existing) == GOOD  # the previous kernel.json is intact
    assert os.listdir(existing) == ["kernel.json"]


def test_reinstall_from_the_installed_folder_keeps_it(tmp_path: Path) -> None:
    src = make(tmp_path / "src", "mine")
    dest = install_kernel_spec(str(src), user=True)
    # Installing a kernelspec from where it is already installed must not delete it.
    assert install_kernel_spec(dest, user=True) == dest
    assert read_kernel_spec(dest) == GOOD
    assert install_kernel_spec(dest + os.sep, user=True, replace=False) == dest


def test_no_such_kernel_spec_is_a_key_error(tmp_path: Path) -> None:
    # jupyter_client's KernelSpecManager.get_kernel_spec raises NoSuchKernel(KeyError).
    with pytest.raises(KeyError) as info:
        find_kernel_spec("nope", [str(tmp_path)])
    assert str(info.value).startswith("no kernelspec named 'nope'")


def test_expand_env_fills_variables_like_jupyter_client() -> None:
    base = {"PATH": "/usr/bin", "HOME": "/home/u"}
    env = {"PATH": "/opt/k/bin:${PATH}", "X": "$HOME/x", "Y": "${UNKNOWN}", "Z": "$$literal"}
    assert kernelspec.expand_env(env, base) == {
        "PATH": "/opt/k/bin:/usr/bin",
        "X": "/home/u/x",
        "Y": "${UNKNOWN}",
        "Z": "$literal",
    }
    assert kernelspec.expand_env(None, base) == {}
