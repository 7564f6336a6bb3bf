"""Which providers load: ``KERNEL_MGMT_PROVIDERS``, and hints when it or the config's
``providers.allow`` names a provider that is not installed.

The finder applies the selection (:meth:`~kernel_mgmt.discovery.KernelFinder.from_entrypoints`);
``kernel-mgmt list``, ``providers`` and ``run`` print :func:`provider_selection_hints`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ENV_PROVIDERS", "provider_selection_hints"]

#: Comma-separated provider ids to load (all others are not even imported); "" loads none.
ENV_PROVIDERS = "KERNEL_MGMT_PROVIDERS"


def provider_selection_hints(finder: Any) -> list[str]:
    """Providers that ``KERNEL_MGMT_PROVIDERS`` or the config's ``providers.allow`` asks for
    but that are not installed (a typo, or a package to install), one hint each."""
    import os

    from .config import providers_section

    installed = {info.id for info in finder.providers}
    have = ", ".join(sorted(installed)) or "none"
    hints = []
    env = os.environ.get(ENV_PROVIDERS)
    if env is not None:
        missing = [p for p in (p.strip() for p in env.split(",")) if p and p not in installed]
        if missing:
            hints.append(
                f"{ENV_PROVIDERS}={env!r} names provider(s) not installed: "
                f"{', '.join(missing)} (installed: {have})"
            )
        elif not installed & {p.strip() for p in env.split(",")}:
            hints.append(f"{ENV_PROVIDERS}={env!r} selects no provider (installed: {have})")
    allow = providers_section(finder.config).get("allow")
    if allow is not None:
        missing = [p for p in allow if p not in installed]
        if missing:
            hints.append(
                f"the config's providers.allow names provider(s) not installed: "
                f"{', '.join(missing)} (installed: {have})"
            )
    return hints
