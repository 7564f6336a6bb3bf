"""A provider's hook implementations, read as pluggy reads them, mostly without pluggy.

pluggy costs a ``kernel-mgmt list`` more than the listing itself (it imports ``inspect``), and
every provider is registered on every call. :func:`read_hookimpls` reads the hooks of the
plain providers (a module, or an instance whose hooks are ordinary functions or methods, marked
with ``@hookimpl`` or, seed style, overriding :class:`~kernel_mgmt.providers.KernelProviderBase`)
with pluggy's rules: the ``kernel_mgmt_impl`` marker attribute, ``specname``, the parameter
names (bound ``self`` stripped) and the check that every positional parameter is one the
hookspec offers. For anything else (static or class methods, wrapped functions, wrappers, an
error to word) it answers :class:`NeedsPluggy`, and the finder registers that provider with a
real ``pluggy.PluginManager`` (:func:`pluggy_manager`), so pluggy's semantics hold throughout.
"""

from __future__ import annotations

import types
from typing import Any

from .providers import KernelProviderBase

__all__ = ["HOOK_NAMES", "SPEC_ARGNAMES", "HookImpl", "NeedsPluggy", "read_hookimpls"]

HOOK_NAMES = ("load_config", "find_kernels", "launch")
#: The positional parameters of each hookspec in :mod:`kernel_mgmt.hookspecs` (a test checks
#: that pluggy reads the same from it).
SPEC_ARGNAMES: dict[str, tuple[str, ...]] = {
    "load_config": ("config",),
    "find_kernels": (),
    "launch": ("name", "cwd", "launch_params", "kernel_id"),
}
_MARKER = "kernel_mgmt_impl"
_IMPLICIT_NAMES = ("self", "cls")
_ABSENT = object()


class NeedsPluggy(Exception):
    """This provider is not a plain one: register it with pluggy itself."""


class HookImpl:
    """The part of ``pluggy.HookImpl`` the finder uses: the function and its parameters."""

    __slots__ = ("argnames", "function", "kwargnames", "plugin")

    def __init__(self, plugin: Any, function: Any) -> None:
        self.plugin = plugin
        self.function = function
        self.argnames, self.kwargnames = _varnames(function)


def _varnames(func: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """pluggy's ``varnames`` for a function or a bound method (parameters with defaults are
    keyword names; keyword-only parameters are left out)."""
    is_bound = isinstance(func, types.MethodType)
    raw = func.__func__ if is_bound else func
    if not isinstance(raw, types.FunctionType) or hasattr(raw, "__wrapped__"):
        raise NeedsPluggy  # pluggy unwraps (inspect.unwrap)
    code = raw.__code__
    args: tuple[str, ...] = code.co_varnames[: code.co_argcount]
    defaults = raw.__defaults__
    kwargs: tuple[str, ...] = ()
    if defaults:
        args, kwargs = args[: -len(defaults)], args[-len(defaults) :]
    tail = raw.__qualname__.rsplit("<locals>.", maxsplit=1)[-1]
    if args and (is_bound or ("." in tail and args[0] in _IMPLICIT_NAMES)):
        args = args[1:]
    return args, kwargs


def _static(plugin: Any, name: str) -> tuple[Any, Any] | None:
    """``(marker holder, function as getattr binds it)`` for a plain hookable attribute, None
    for attributes that cannot be hooks; pluggy's ``_static_hook_attr`` for plain providers."""
    if isinstance(plugin, types.ModuleType):
        value = plugin.__dict__.get(name, _ABSENT)
        if value is _ABSENT:
            return None  # ModuleType's own attributes: never marked
        if isinstance(value, types.MethodType):
            return value.__func__, value
        if isinstance(value, types.FunctionType):
            return value, value
        if isinstance(value, (staticmethod, classmethod)):
            raise NeedsPluggy
        return None
    try:
        own = object.__getattribute__(plugin, "__dict__")
    except AttributeError:
        own = {}
    value = own.get(name, _ABSENT) if isinstance(own, dict) else _ABSENT
    if value is not _ABSENT:
        if isinstance(value, types.MethodType):
            return value.__func__, value
        if isinstance(value, types.FunctionType):
            return value, value
        return None
    for klass in type(plugin).__mro__:
        if name in klass.__dict__:
            static = klass.__dict__[name]
            break
    else:
        return None
    if isinstance(static, (staticmethod, classmethod, types.MemberDescriptorType)):
        raise NeedsPluggy
    if isinstance(static, types.MethodType):
        return static.__func__, static
    if isinstance(static, types.FunctionType):
        return static, static.__get__(plugin, type(plugin))
    return None


def _marker_opts(holder: Any) -> dict[str, Any] | None:
    opts = getattr(holder, _MARKER, None)
    if opts is None:
        func = getattr(holder, "__func__", None)
        opts = getattr(func, _MARKER, None) if func is not None else None
    return opts if isinstance(opts, dict) else None


def read_hookimpls(plugin: Any) -> tuple[dict[str, HookImpl], list[str]]:
    """``(impls by hook name, unknown hook names)`` of a plain provider, as pluggy would
    register them; :class:`NeedsPluggy` for any other provider, or any error to report."""
    if isinstance(plugin, type):
        raise NeedsPluggy
    seed_style = isinstance(plugin, KernelProviderBase)
    impls: dict[str, HookImpl] = {}
    unknown: list[str] = []
    for attr in dir(plugin):
        found = _static(plugin, attr)
        opts = _marker_opts(found[0]) if found is not None else None
        if (
            opts is None
            and seed_style
            and attr in HOOK_NAMES
            and getattr(type(plugin), attr) is not getattr(KernelProviderBase, attr)
        ):
            if found is None:
                raise NeedsPluggy  # overridden by something pluggy cannot bind: its error
            opts = {}
        if opts is None:
            continue
        assert found is not None
        if opts.get("wrapper") or opts.get("hookwrapper"):
            raise NeedsPluggy
        hook = opts.get("specname") or attr
        impl = HookImpl(plugin, found[1])
        if hook in SPEC_ARGNAMES:
            if hook in impls or not set(impl.argnames) <= set(SPEC_ARGNAMES[hook]):
                raise NeedsPluggy  # two impls of one hook, or pluggy's validation error
            impls[hook] = impl
        elif hook not in unknown:
            unknown.append(hook)
    return impls, unknown


def pluggy_manager() -> Any:
    """A ``pluggy.PluginManager`` for the providers :func:`read_hookimpls` leaves to pluggy
    (imported only then). It also treats a :class:`KernelProviderBase` subclass's overridden
    methods as hook implementations."""
    import pluggy

    from . import hookspecs

    class _PluginManager(pluggy.PluginManager):
        def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
            opts = super().parse_hookimpl_opts(plugin, name)
            if (
                opts is None
                and name in HOOK_NAMES
                and isinstance(plugin, KernelProviderBase)
                and getattr(type(plugin), name) is not getattr(KernelProviderBase, name)
            ):
                return {}
            return opts

    pm = _PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm
