"""``hookimpl``: the marker for a provider's hook implementations, without importing pluggy.

``from kernel_mgmt import hookimpl`` (as ``from pytest import hookimpl``). It writes exactly
what ``pluggy.HookimplMarker("kernel_mgmt")`` writes (a ``kernel_mgmt_impl`` attribute holding
the options), so pluggy and the finder read it alike, and
:data:`kernel_mgmt.hookspecs.hookimpl` (pluggy's own marker) stays interchangeable with it.
Importing pluggy costs a CLI call more than its whole listing work (pluggy imports
``inspect``); every provider imports this module at every ``kernel-mgmt list``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

__all__ = ["HookimplMarker", "hookimpl"]

_F = TypeVar("_F", bound=Callable[..., Any])


class HookimplMarker:
    """Marks hook implementations for the plugin project ``project_name`` (pluggy-compatible)."""

    __slots__ = ("project_name",)

    def __init__(self, project_name: str) -> None:
        self.project_name = project_name

    @overload
    def __call__(self, function: _F, **opts: Any) -> _F: ...

    @overload
    def __call__(self, function: None = None, **opts: Any) -> Callable[[_F], _F]: ...

    def __call__(
        self,
        function: _F | None = None,
        hookwrapper: bool = False,
        optionalhook: bool = False,
        tryfirst: bool = False,
        trylast: bool = False,
        specname: str | None = None,
        wrapper: bool = False,
    ) -> _F | Callable[[_F], _F]:
        """Mark ``function`` (or, called with options only, return a marking decorator).

        The options are pluggy's: ``specname`` names the hook when the function's own name
        differs; ``tryfirst``/``trylast``/``optionalhook``/``wrapper``/``hookwrapper`` are
        kept for pluggy's sake (the finder calls each provider's hooks on their own).
        """

        def mark(func: _F) -> _F:
            opts = {
                "wrapper": wrapper,
                "hookwrapper": hookwrapper,
                "optionalhook": optionalhook,
                "tryfirst": tryfirst,
                "trylast": trylast,
                "specname": specname,
            }
            setattr(func, self.project_name + "_impl", opts)
            return func

        return mark if function is None else mark(function)


#: Marks a provider's hook implementations (``@hookimpl`` or ``@hookimpl(specname=...)``).
hookimpl = HookimplMarker("kernel_mgmt")
