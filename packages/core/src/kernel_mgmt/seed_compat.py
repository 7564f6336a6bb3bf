"""The seed's ``KernelSpecProvider`` and ``IPykernelProvider``, asked for from ``discovery``.

The seed documents both classes in ``jupyter_kernel_mgmt.discovery``; they now live in the spec
and pyimport provider packages, and core never imports a provider. On an explicit
``from kernel_mgmt.discovery import KernelSpecProvider``, ``discovery.__getattr__`` loads the
installed provider through its entry point (:func:`provider_class`); when it is missing the
error says what to install.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["ProviderClassUnavailable", "provider_class"]

MODULE = "kernel_mgmt.discovery"

#: The seed's ``jupyter_kernel_mgmt.discovery`` classes that now live in provider packages:
#: name -> (provider id, distribution to install).
_PROVIDER_CLASSES = {
    "KernelSpecProvider": ("spec", "kernel-mgmt-provider-spec"),
    "IPykernelProvider": ("pyimport", "kernel-mgmt-provider-pyimport"),
}


class ProviderClassUnavailable(AttributeError):
    """``KernelSpecProvider`` or ``IPykernelProvider`` was requested from this module, but
    the provider package that holds it is not installed (the message says what to install).

    An AttributeError, so that ``hasattr(discovery, name)`` is False. Python turns an
    AttributeError in ``from kernel_mgmt.discovery import name`` into a bare "cannot import
    name" ImportError, so inside that statement an ImportError with this message is raised.
    """


def _unavailable(name: str, why: str) -> Exception:
    """The error for a compat class that cannot be had: ImportError in ``from ... import``."""
    message = f"cannot import name {name!r} from {MODULE!r}: {why}"
    try:
        import opcode

        # 0: here, 1: provider_class, 2: discovery.__getattr__, 3: the code doing the look-up
        frame = sys._getframe(3)
        importing = frame.f_code.co_code[frame.f_lasti] == opcode.opmap["IMPORT_FROM"]
    except Exception:  # another interpreter: the AttributeError still carries the hint
        importing = False
    if importing:
        return ImportError(message, name=MODULE)
    return ProviderClassUnavailable(message, name=name, obj=sys.modules[MODULE])


def provider_class(name: str, scan: Callable[..., list[Any]]) -> Any:
    """The class ``name`` from its installed provider (found with ``scan``, the entry-point
    scan of :mod:`kernel_mgmt.discovery`), or the error that says what to install."""
    compat = _PROVIDER_CLASSES.get(name)
    if compat is None:
        raise AttributeError(f"module {MODULE!r} has no attribute {name!r}")
    provider_id, distribution = compat
    ep = next((e for e in scan(("kernel_mgmt",)) if e.name == provider_id), None)
    if ep is None:
        raise _unavailable(
            name,
            f"it belongs to the {provider_id!r} provider, which is not installed; install it "
            f"with `pip install {distribution}`",
        )
    loaded = ep.load()  # the provider's module (or, for an entry point naming it, the class)
    cls = loaded if getattr(loaded, "__name__", None) == name else getattr(loaded, name, None)
    if cls is None:
        raise _unavailable(
            name,
            f"the installed {provider_id!r} provider ({ep.value}) has no {name}; "
            f"reinstall {distribution}",
        )
    return cls
