"""KernelFinder with in-process providers: the three provider forms, sync and async hooks,
stable order, use inside a running loop, and launch routing with launch_params validation."""

from __future__ import annotations

import asyncio
import types
from typing import Any

import pytest

from kernel_mgmt.discovery import (
    InvalidLaunchParams,
    KernelFinder,
    KernelProviderBase,
    NoSuchKernel,
    validate_launch_params,
)
from kernel_mgmt.hookspecs import hookimpl


def attrs(name: str, **extra: Any) -> dict[str, Any]:
    return {"display_name": name.title(), "language": "python", "argv": ["x"], **extra}


def module_provider(pid: str, names: list[str], launches: list | None = None) -> types.ModuleType:
    """A real module object with @hookimpl functions: the package form of a provider."""
    mod = types.ModuleType(f"kernel_mgmt_provider_{pid}")

    @hookimpl
    def find_kernels():
        for n in names:
            yield n, attrs(n)

    @hookimpl
    async def launch(name, cwd, launch_params):
        if launches is not None:
            launches.append((pid, name, cwd, launch_params))
        return {"kernel_name": name}, f"manager-{pid}-{name}"

    mod.find_kernels = find_kernels
    mod.launch = launch
    return mod


class Instance:
    """The instance form: decorated methods on an object with an id."""

    id = "inst"

    def __init__(self) -> None:
        self.config: Any = None

    @hookimpl
    def load_config(self, config):
        self.config = config

    @hookimpl
    def find_kernels(self):
        assert self.config is not None, "load_config must run before find_kernels"
        return [("one", attrs("one")), ("two", attrs("two"))]

    @hookimpl
    async def launch(self, name, cwd, launch_params):
        return {"kernel_name": name}, "instance-manager"


class Seed(KernelProviderBase):
    """The seed form: undecorated overrides, an async generator find_kernels."""

    id = "seed"
    seen_config: Any = None

    def load_config(self, config=None):
        Seed.seen_config = config

    async def find_kernels(self):
        await asyncio.sleep(0)
        yield "standard", {"display_name": "Oblong (standard)", "language": {"name": "oblong"}}
        yield "rounded", {"display_name": "Oblong (rounded)", "language": {"name": "oblong"}}

    async def launch(self, name, cwd=None, launch_params=None):
        return {"kernel_name": name, "cwd": cwd}, "seed-manager"


class CoroutineProvider(KernelProviderBase):
    id = "coro"

    async def find_kernels(self):
        await asyncio.sleep(0)
        return [("listed", attrs("listed"))]

    async def launch(self, name, cwd=None, launch_params=None):
        return {"kernel_name": name}, "coro-manager"


def test_three_provider_forms_and_stable_order() -> None:
    finder = KernelFinder(
        [module_provider("mod", ["b", "a"]), Instance(), Seed, CoroutineProvider()],
        config={"inst": {"x": 1}},
    )
    ids = [type_id for type_id, _ in finder.find_kernels()]
    assert ids == [
        "mod/b",
        "mod/a",
        "inst/one",
        "inst/two",
        "seed/standard",
        "seed/rounded",
        "coro/listed",
    ]
    assert ids == [type_id for type_id, _ in finder.find_kernels()]  # stable across calls
    assert finder.problems == []
    assert Seed.seen_config == {"inst": {"x": 1}}


def test_attributes_are_normalised() -> None:
    finder = KernelFinder([Seed(), module_provider("mod", ["k"])])
    found = dict(finder.find_kernels())
    # The seed passes language as {"name": ...}; consumers get both forms.
    assert found["seed/standard"]["language"] == "oblong"
    assert found["seed/standard"]["language_info"] == {"name": "oblong"}
    assert found["mod/k"]["language_info"] == {"name": "python"}


async def test_find_kernels_inside_running_loop() -> None:
    # A sync call from a coroutine: async providers run in a private loop in a worker thread.
    finder = KernelFinder([Seed(), CoroutineProvider()])
    assert [t for t, _ in finder.find_kernels()] == ["seed/standard", "seed/rounded", "coro/listed"]
    found = await finder.find_kernels_async()
    assert [t for t, _ in found] == ["seed/standard", "seed/rounded", "coro/listed"]


def test_mapping_form_and_module_id_derivation() -> None:
    mod = module_provider("derived", ["k"])
    assert [t for t, _ in KernelFinder([mod]).find_kernels()] == ["derived/k"]
    assert [t for t, _ in KernelFinder({"named": mod}).find_kernels()] == ["named/k"]


def test_provider_without_find_kernels_fails_and_others_still_work() -> None:
    class Typo:
        id = "typo"

        @hookimpl
        def find_kernel(self):  # misspelled hook
            return []

    finder = KernelFinder([Typo(), module_provider("good", ["k"])])
    assert [t for t, _ in finder.find_kernels()] == ["good/k"]
    (info,) = [p for p in finder.providers if p.id == "typo"]
    assert info.status == "failed"
    assert "no find_kernels hook" in info.reason and "find_kernel" in info.reason


def test_hookimpl_with_arguments_not_in_spec_fails() -> None:
    class Bad:
        id = "bad"

        @hookimpl
        def find_kernels(self, unexpected):
            return []

    finder = KernelFinder([Bad()])
    assert list(finder.find_kernels()) == []
    assert "unexpected" in finder.providers[0].reason


# -- launch ---------------------------------------------------------------------------------


async def test_launch_routes_only_to_owning_provider() -> None:
    launches: list = []
    finder = KernelFinder(
        [module_provider("a", ["k"], launches), module_provider("b", ["k"], launches)]
    )
    _, manager = await finder.launch("b/k", cwd="/tmp")
    assert manager == "manager-b-k"
    assert launches == [("b", "k", "/tmp", None)]  # never broadcast to provider a


async def test_launch_without_prior_find_and_seed_form() -> None:
    finder = KernelFinder([Seed()])
    info, manager = await finder.launch("seed/rounded", cwd="/x")
    assert (info, manager) == ({"kernel_name": "rounded", "cwd": "/x"}, "seed-manager")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("nope/k", "no provider 'nope'"),
        ("a/missing", "offers: k"),
        ("noslash", "'<provider id>/<name>'"),
        ("a/", "'<provider id>/<name>'"),
    ],
)
async def test_launch_unknown_kernel(name: str, fragment: str) -> None:
    finder = KernelFinder([module_provider("a", ["k"])])
    with pytest.raises(NoSuchKernel, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        await finder.launch(name)


SCHEMA = {
    "type": "object",
    "properties": {
        "cpus": {"type": "integer", "minimum": 1, "default": 2},
        "mode": {"enum": ["fast", "slow"]},
    },
    "required": ["mode"],
    "additionalProperties": False,
}


class Parametrised(KernelProviderBase):
    id = "param"

    def __init__(self) -> None:
        self.launched: list = []

    def find_kernels(self):
        yield "k", attrs("k", metadata={"launch_parameter_schema": SCHEMA})
        yield "free", attrs("free")

    async def launch(self, name, cwd=None, launch_params=None):
        self.launched.append(launch_params)
        return {}, None


async def test_launch_params_defaults_applied() -> None:
    provider = Parametrised()
    finder = KernelFinder([provider])
    await finder.launch("param/k", launch_params={"mode": "fast"})
    assert provider.launched == [{"mode": "fast", "cpus": 2}]
    await finder.launch("param/free", launch_params={"anything": [1]})
    assert provider.launched[-1] == {"anything": [1]}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"mode": "fast", "cpus": "four"}, "cpus"),
        ({"mode": "fast", "cpus": 0}, "cpus"),
        ({"cpus": 3}, "mode"),
        ({"mode": "fast", "gpu": True}, "gpu"),
    ],
)
async def test_invalid_launch_params_rejected_before_launch(params: dict, field: str) -> None:
    provider = Parametrised()
    finder = KernelFinder([provider])
    with pytest.raises(InvalidLaunchParams) as info:
        await finder.launch("param/k", launch_params=params)
    assert info.value.kernel == "param/k"
    assert info.value.field == field
    assert "param/k" in str(info.value) and field in str(info.value)
    assert provider.launched == []  # nothing started


def test_validate_launch_params_nested_defaults() -> None:
    schema = {
        "type": "object",
        "properties": {
            "res": {
                "type": "object",
                "properties": {"mem": {"type": "string", "default": "1G"}},
                "default": {},
            }
        },
    }
    out = validate_launch_params("x/y", {"metadata": {"launch_parameter_schema": schema}}, None)
    assert out == {"res": {"mem": "1G"}}


async def test_concurrent_cold_launches_share_one_find() -> None:
    calls = 0

    class Slowish(KernelProviderBase):
        id = "slow"

        async def find_kernels(self):
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.05)
            return [("k", attrs("k"))]

        async def launch(self, name, cwd=None, launch_params=None):
            return {"kernel_name": name}, None

    finder = KernelFinder([Slowish()])
    results = await asyncio.gather(*(finder.launch("slow/k") for _ in range(50)))
    assert len(results) == 50 and calls == 1
    assert finder.problems == []


async def test_kernel_id_reaches_providers_that_accept_it() -> None:
    seen: list = []

    class WithId(KernelProviderBase):
        id = "withid"

        def find_kernels(self):
            yield "k", attrs("k")

        async def launch(self, name, cwd=None, launch_params=None, kernel_id=None):
            seen.append(kernel_id)
            return {}, None

    finder = KernelFinder([WithId(), module_provider("plain", ["k"])])
    await finder.launch("withid/k", kernel_id="abc")
    await finder.launch("withid/k")
    assert seen == ["abc", None]
    await finder.launch("plain/k", kernel_id="ignored")  # hook without kernel_id still works


async def test_launch_type_names_are_case_insensitive() -> None:
    # Kernelspec names are case-insensitive (jupyter_client lower-cases them): "spec/Python3"
    # must reach the provider's "python3". The provider gets the name in its own spelling.
    launches: list = []
    finder = KernelFinder([module_provider("a", ["python3", "Mixed", "Ab", "aB"], launches)])
    await finder.launch("a/PYTHON3")
    await finder.launch("a/mixed")
    await finder.launch("a/aB")  # an exact match wins over case-insensitive ones
    assert [name for _, name, _, _ in launches] == ["python3", "Mixed", "aB"]
    with pytest.raises(NoSuchKernel, match="ambiguous"):
        await finder.launch("a/ab")  # two case-insensitive matches: refuse to guess


async def test_launch_from_a_failing_provider_says_why() -> None:
    class Down(KernelProviderBase):
        id = "down"

        def find_kernels(self):
            raise RuntimeError("cluster unreachable")

        async def launch(self, name, cwd=None, launch_params=None):
            raise AssertionError("never called")

    finder = KernelFinder([Down()])
    with pytest.raises(NoSuchKernel, match="RuntimeError: cluster unreachable"):
        await finder.launch("down/k")


async def test_no_such_kernel_is_a_key_error_as_in_the_seed() -> None:
    # The seed raised KeyError for an unknown provider (jupyter_client's NoSuchKernel is a
    # KeyError too): code written for it catches KeyError.
    finder = KernelFinder([module_provider("a", ["k"])])
    for name in ("nope/k", "a/missing"):
        with pytest.raises(KeyError) as info:
            await finder.launch(name)
        assert isinstance(info.value, NoSuchKernel)
        assert str(info.value).startswith(f"no kernel type {name!r}")  # not KeyError's repr


@pytest.mark.parametrize("kernel", ["param/k", "param/free"])
async def test_launch_params_must_be_a_mapping(kernel: str) -> None:
    provider = Parametrised()
    finder = KernelFinder([provider])
    with pytest.raises(InvalidLaunchParams, match="mapping"):
        await finder.launch(kernel, launch_params="mode=fast")  # type: ignore[arg-type]
    assert provider.launched == []


class TouchyManager:
    """A manager whose properties raise on reading or writing (e.g. a remote one offline)."""

    def __init__(self) -> None:
        self.stopped = False

    @property
    def kernel_type(self) -> Any:
        raise RuntimeError("remote manager: connection lost")

    @property
    def cwd(self) -> Any:
        return None

    @cwd.setter
    def cwd(self, value: Any) -> None:
        raise ValueError("cwd is fixed by the remote host")

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "launch_params":
            raise OSError("read-only")
        object.__setattr__(self, name, value)


async def test_launch_result_reaches_the_caller_whatever_the_manager_raises() -> None:
    """The kernel is running when the finder notes how it was launched: a manager whose
    properties raise must not lose it (the caller must get the manager to stop it)."""
    manager = TouchyManager()

    class Remote(KernelProviderBase):
        id = "remote"

        def find_kernels(self):
            yield "k", attrs("k")

        async def launch(self, name, cwd=None, launch_params=None):
            return {"ip": "127.0.0.1"}, manager

    info, got = await KernelFinder([Remote()]).launch(
        "remote/k", cwd="/tmp", launch_params={"a": 1}
    )
    assert (info, got) == ({"ip": "127.0.0.1"}, manager)


async def test_launch_notes_type_cwd_and_params_on_plain_managers() -> None:
    manager = types.SimpleNamespace(cwd=None)

    class Plain(KernelProviderBase):
        id = "plain"

        def find_kernels(self):
            yield "k", attrs("k")

        async def launch(self, name, cwd=None, launch_params=None):
            return {}, manager

    await KernelFinder([Plain()]).launch("plain/k", cwd="/srv", launch_params={"a": 1})
    assert (manager.kernel_type, manager.cwd, manager.launch_params) == (
        "plain/k",
        "/srv",
        {"a": 1},
    )


class _EntryPoint:
    """Just enough of importlib.metadata.EntryPoint for KernelFinder.from_entrypoints."""

    group = "kernel_mgmt"
    dist = None

    def __init__(self, name: str, obj: Any) -> None:
        self.name, self.value, self._obj = name, f"kernel_mgmt_provider_{name}", obj

    def load(self) -> Any:
        return self._obj


def _import_fails() -> Any:
    raise ImportError("no module named 'cluster'")


class _BrokenEntryPoint(_EntryPoint):
    def load(self) -> Any:
        return _import_fails()


@pytest.mark.parametrize(
    ("entry_point", "config", "message"),
    [
        (
            _EntryPoint("a", module_provider("a", ["k"])),
            {"providers": {"deny": ["a"]}},
            "provider 'a' is disabled: in the config's providers.deny list",
        ),
        (
            _EntryPoint("a", types.ModuleType("kernel_mgmt_provider_a")),
            {},
            "provider 'a' failed to load: implements no find_kernels hook",
        ),
        (
            _BrokenEntryPoint("a", None),
            {},
            "provider 'a' failed to load kernel_mgmt_provider_a: ImportError: no module named",
        ),
    ],
)
async def test_launch_from_an_unloaded_provider_says_why(
    entry_point: _EntryPoint, config: dict, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disabled provider 'is disabled'; one that did not load 'failed to load' (not 'is
    failed'), with the reason once."""
    monkeypatch.delenv("KERNEL_MGMT_PROVIDERS", raising=False)
    finder = KernelFinder.from_entrypoints(config, entry_points=[entry_point], timeout=5)
    with pytest.raises(NoSuchKernel) as info:
        await finder.launch("a/k")
    assert message in str(info.value)
    assert "is failed" not in str(info.value)
    assert str(info.value).count("failed to load") <= 1
