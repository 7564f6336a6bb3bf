"""``from kernel_mgmt import hookimpl`` and the finder's reading of hooks agree with pluggy's.

The finder reads plain providers' hooks without importing pluggy (:mod:`kernel_mgmt.hookimpls`);
what it reads must be what a ``pluggy.PluginManager`` registers, and whatever it cannot read
exactly goes to pluggy itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from typing import Any

import pluggy
import pytest

import kernel_mgmt
from kernel_mgmt import hookspecs
from kernel_mgmt.discovery import KernelFinder, KernelProviderBase
from kernel_mgmt.hookimpls import SPEC_ARGNAMES, NeedsPluggy, read_hookimpls
from kernel_mgmt.markers import HookimplMarker


def pluggy_read(plugin: Any) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """What pluggy registers for ``plugin``: hook name -> (argnames, kwargnames)."""
    pm = pluggy.PluginManager("kernel_mgmt")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="p")
    out = {}
    for caller in pm.get_hookcallers(plugin) or []:
        for impl in caller.get_hookimpls():
            out[caller.name] = (impl.argnames, impl.kwargnames)
    return out


def ours(plugin: Any) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    impls, unknown = read_hookimpls(plugin)
    out = {name: (i.argnames, i.kwargnames) for name, i in impls.items()}
    return {**out, **{name: pluggy_read(plugin)[name] for name in unknown}}


def test_top_level_hookimpl_marks_as_pluggy_does() -> None:
    assert kernel_mgmt.hookimpl.project_name == "kernel_mgmt"
    theirs = pluggy.HookimplMarker("kernel_mgmt")
    for options in ({}, {"specname": "launch"}, {"tryfirst": True, "optionalhook": True}):

        def f() -> None: ...

        def g() -> None: ...

        (kernel_mgmt.hookimpl(**options)(f) if options else kernel_mgmt.hookimpl(f))
        (theirs(**options)(g) if options else theirs(g))
        assert f.kernel_mgmt_impl == g.kernel_mgmt_impl, options  # type: ignore[attr-defined]
    assert isinstance(kernel_mgmt.hookimpl, HookimplMarker)
    assert "hookimpl" in kernel_mgmt.__all__


def test_spec_parameters_are_pluggys() -> None:
    pm = pluggy.PluginManager("kernel_mgmt")
    pm.add_hookspecs(hookspecs)
    for name, args in SPEC_ARGNAMES.items():
        spec = getattr(pm.hook, name).spec
        assert (spec.argnames, spec.kwargnames) == (args, ()), name


def _module() -> types.ModuleType:
    mod = types.ModuleType("kernel_mgmt_provider_demo")

    @kernel_mgmt.hookimpl
    def find_kernels():
        return []

    @kernel_mgmt.hookimpl(specname="launch")
    async def start(name, cwd, launch_params=None, kernel_id=None):
        raise NotImplementedError

    @kernel_mgmt.hookimpl
    def not_a_hook(x):
        return x

    mod.find_kernels, mod.start, mod.not_a_hook = find_kernels, start, not_a_hook
    mod.unmarked = lambda: None
    return mod


class _Instance:
    id = "inst"

    @kernel_mgmt.hookimpl
    def load_config(self, config):
        self.config = config

    @hookspecs.hookimpl  # pluggy's own marker reads the same
    def find_kernels(self):
        return []

    @kernel_mgmt.hookimpl
    async def launch(self, name, cwd, launch_params, *, extra=None):
        raise NotImplementedError


class _Seed(KernelProviderBase):
    id = "seed"

    def find_kernels(self):
        return []

    async def launch(self, name, cwd=None, launch_params=None, kernel_id=None):
        raise NotImplementedError


@pytest.mark.parametrize("make", [_module, _Instance], ids=["module", "instance"])
def test_plain_providers_are_read_as_pluggy_registers_them(make: Any) -> None:
    plugin = make()
    assert ours(plugin) == pluggy_read(plugin)
    impls, unknown = read_hookimpls(plugin)
    assert all(i.plugin is plugin for i in impls.values())
    assert unknown == (["not_a_hook"] if isinstance(plugin, types.ModuleType) else [])


def test_seed_style_overrides_are_hooks() -> None:
    impls, unknown = read_hookimpls(_Seed())
    assert sorted(impls) == ["find_kernels", "launch"] and unknown == []
    assert impls["launch"].argnames == ("name",)
    assert impls["launch"].kwargnames == ("cwd", "launch_params", "kernel_id")


class _Static:
    id = "static"

    @staticmethod
    @kernel_mgmt.hookimpl
    def find_kernels():
        yield "k", {"display_name": "K", "language": "python"}


class _BadArgs:
    id = "badargs"

    @kernel_mgmt.hookimpl
    def find_kernels(self, unexpected):
        return []


class _Wrapper:
    id = "wrapper"

    @kernel_mgmt.hookimpl
    def find_kernels(self):
        return []

    @kernel_mgmt.hookimpl(wrapper=True, specname="find_kernels")
    def around(self):
        return (yield)


@pytest.mark.parametrize("cls", [_Static, _BadArgs, _Wrapper])
def test_what_is_not_plain_goes_to_pluggy(cls: Any) -> None:
    with pytest.raises(NeedsPluggy):
        read_hookimpls(cls())


def test_a_provider_left_to_pluggy_still_works_and_fails_alike() -> None:
    finder = KernelFinder([_Static(), _BadArgs()])
    assert [t for t, _ in finder.find_kernels()] == ["static/k"]
    (bad,) = [p for p in finder.providers if p.id == "badargs"]
    assert bad.status == "failed" and "invalid hook implementation" in bad.reason
    assert "unexpected" in bad.reason


def test_list_with_every_provider_imports_no_pluggy(tmp_path: Any) -> None:
    """``kernel-mgmt list`` (all installed providers) never imports pluggy or inspect."""
    skip = ("JUPYTER", "KERNEL_MGMT", "XDG_", "CONDA")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env.update(
        HOME=str(tmp_path),
        JUPYTER_PATH=str(tmp_path / "path"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
    )
    code = "import sys; from kernel_mgmt.cli import main; sys.exit(main(['list']))"
    p = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip() for line in p.stderr.splitlines() if "|" in line}
    for provider in ("kernel_mgmt_provider_spec", "kernel_mgmt_provider_conda"):
        assert any(n.split(".")[0] == provider for n in names), (provider, sorted(names))
    assert not {"pluggy", "inspect"} & names, sorted({"pluggy", "inspect"} & names)
