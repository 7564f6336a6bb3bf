"""Point the ``comm`` package's hooks at the running kernel, without importing it first.

Libraries that talk to the frontend (ipywidgets, bqplot, ...) open comms through
``comm.create_comm(...)`` and reach the manager through ``comm.get_comm_manager()``; the
package expects the kernel to replace both. Importing ``comm`` at start-up would cost every
kernel the time even if no cell ever uses it, and patching later misses a cell that imports
ipywidgets and shows a widget at once. So :func:`install` patches ``comm`` if it is already
imported, and otherwise puts a finder on ``sys.meta_path`` that patches the module right after
its first import (then steps aside).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .kernelbase import Kernel

__all__ = ["install"]


def _patch(module: Any, kernel: Kernel) -> None:
    def create_comm(*args: Any, **kwargs: Any) -> Any:
        from .comms import Comm

        kwargs.pop("kernel", None)
        return Comm(*args, manager=kernel.comm_manager, **kwargs)

    def get_comm_manager() -> Any:
        return kernel.comm_manager

    module.create_comm = create_comm
    module.get_comm_manager = get_comm_manager


class _Loader:
    """Runs the real loader, then patches the fresh module."""

    def __init__(self, loader: Any, kernel: Kernel) -> None:
        self._loader = loader
        self._kernel = kernel

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        _patch(module, self._kernel)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ...
        return getattr(self._loader, name)


class _Finder:
    """On ``sys.meta_path`` until ``comm`` is imported."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "comm":
            return None
        with _suppress_self(self):
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                spec = find(fullname, path, target) if find is not None else None
                if spec is not None:
                    break
            else:
                return None  # not installed: the import fails as usual
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader, self._kernel)
        return spec


class _suppress_self:
    """Take the finder off ``sys.meta_path`` (for good: it patches one import only)."""

    def __init__(self, finder: _Finder) -> None:
        self.finder = finder

    def __enter__(self) -> None:
        while self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)

    def __exit__(self, *exc: Any) -> None:
        return None


def install(kernel: Kernel) -> None:
    """Make ``comm.create_comm``/``comm.get_comm_manager`` serve ``kernel`` from now on."""
    module = sys.modules.get("comm")
    if module is not None:
        _patch(module, kernel)
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder(kernel))
