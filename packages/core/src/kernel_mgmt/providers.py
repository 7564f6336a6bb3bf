"""What a provider is to the finder: the seed's base class, and the record of a loaded one.

:class:`KernelProviderBase` is the seed's way to write a provider (a subclass whose overridden
methods are its hooks); :class:`ProviderInfo` is what ``kernel-mgmt providers`` shows for each;
``_Provider`` is the finder's entry for one, with its hook implementations and kernels.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .hookcalls import _Job

__all__ = ["KernelProviderBase", "ProviderInfo"]


class KernelProviderBase:
    """Seed-style base class: subclass it, set ``id``, override the methods (no decorators).

    The finder treats the overridden ``find_kernels``/``launch``/``load_config`` as the
    provider's hook implementations.
    """

    #: Provider id: ``[a-z0-9][a-z0-9._-]*``, no ``/``; equals the entry-point name.
    id: str = ""

    def load_config(self, config: Mapping[str, Any] | None = None) -> None:
        """Receive the merged configuration before any other call (default: ignore it)."""

    def find_kernels(self) -> Iterable[tuple[str, dict[str, Any]]]:
        """Yield ``(name, attributes)`` for each kernel type this provider offers."""
        raise NotImplementedError

    async def launch(
        self, name: str, cwd: str | None = None, launch_params: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], Any]:
        """Start kernel type ``name``; return ``(connection_info, kernel_manager)``.

        Add a ``kernel_id=None`` parameter to receive the application's kernel id.
        """
        raise NotImplementedError


class ProviderInfo:
    """What ``kernel-mgmt providers`` shows for one provider.

    ``status`` is "ok", "failed" or "disabled" (not selected); ``reason`` says why.
    (A plain class, not a dataclass: importing dataclasses costs the CLI ~3 ms.)
    """

    def __init__(
        self,
        id: str,
        distribution: str | None = None,
        version: str | None = None,
        group: str | None = None,
        value: str | None = None,
    ) -> None:
        self.id = id
        self.distribution = distribution
        self.version = version
        self.group = group
        self.value = value
        self.status = "ok"
        self.reason = ""
        self.hooks: list[str] = []
        self.kernels: int | None = None
        self.problems: list[str] = []
        #: What the provider says about its state when nothing is wrong (report_note).
        self.note = ""

    def __repr__(self) -> str:
        return f"<ProviderInfo {self.id!r} {self.status} {self.reason!r}>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": f"{self.group}: {self.value}" if self.group else None,
            "status": self.status,
            "reason": self.reason,
            "hooks": list(self.hooks),
            "kernels": self.kernels,
            "problems": list(self.problems),
            "note": self.note,
        }


class _Provider:
    """A registered provider: its object, hook implementations and status."""

    def __init__(self, info: ProviderInfo) -> None:
        self.info = info
        self.plugin: Any = None
        self.impls: dict[str, Any] = {}
        self.busy: _Job | None = None
        self.kernels: dict[str, dict[str, Any]] = {}

    @property
    def id(self) -> str:
        return self.info.id


def _module_provider_id(obj: Any) -> str | None:
    provider_id = getattr(obj, "id", None)
    if isinstance(provider_id, str) and provider_id:
        return provider_id
    module_name = getattr(obj, "__name__", None) if isinstance(obj, type(sys)) else None
    if module_name:
        return module_name.rsplit(".", 1)[-1].removeprefix("kernel_mgmt_provider_")
    return None
