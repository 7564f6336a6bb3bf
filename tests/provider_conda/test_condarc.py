"""The YAML subset read from .condarc files."""

from __future__ import annotations

import os

import pytest

from kernel_mgmt_provider_conda._condarc import condarc_search_path, parse_condarc


def test_block_and_flow_lists_scalars_comments_quotes() -> None:
    text = """\
# comment
channels:
  - conda-forge   # trailing
  - defaults
envs_dirs:
- /a/b
- "/with space/#not comment"
- '/it''s'
pkgs_dirs: [/p1, "/p 2", '/p,3']
auto_activate_base: false
root_prefix: "/opt/c\\"x"
proxy_servers:
  http: http://proxy
  https: https://proxy
empty:
url: http://host/path#frag
"""
    data = parse_condarc(text)
    assert data["channels"] == ["conda-forge", "defaults"]
    assert data["envs_dirs"] == ["/a/b", "/with space/#not comment", "/it's"]
    assert data["pkgs_dirs"] == ["/p1", "/p 2", "/p,3"]
    assert data["auto_activate_base"] == "false"
    assert data["root_prefix"] == '/opt/c"x'
    assert data["proxy_servers"] == {}
    assert data["empty"] is None
    assert data["url"] == "http://host/path#frag"


def test_nested_lists_are_not_taken_for_top_level_ones() -> None:
    data = parse_condarc("custom:\n  sub: 1\n  - x\nenvs_dirs: /one\n")
    assert data["custom"] == {}
    assert data["envs_dirs"] == "/one"


@pytest.mark.parametrize("text", ["", "---\n", "just text\n", ":\n", "- orphan\n", "{a: 1}\n"])
def test_junk_never_raises(text: str) -> None:
    assert isinstance(parse_condarc(text), dict)


def test_search_path_order() -> None:
    env = {
        "HOME": "/h",
        "XDG_CONFIG_HOME": "/xdg",
        "CONDA_PREFIX": "/active",
        "CONDARC": "/explicit.yml",
    }
    paths = condarc_search_path("/root", env)
    j = os.path.join
    expected_order = [
        j("/root", ".condarc"),
        j("/xdg", "conda", "condarc"),
        j("/h", ".config", "conda", ".condarc"),
        j("/h", ".conda", "condarc.d") + os.sep,
        j("/h", ".condarc"),
        j("/active", ".condarc"),
        "/explicit.yml",
    ]
    positions = [paths.index(p) for p in expected_order]
    assert positions == sorted(positions)
    assert paths[-1] == "/explicit.yml"
