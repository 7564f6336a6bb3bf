"""The name table: every kernel type under its Jupyter name, with aliases, built per listing.

Kept apart from the spec manager so the rules (who gets a name, which folders are ours) are
plain functions of the listing: see :mod:`kernel_mgmt_jupyter.names` for the scheme.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from .names import (
    SEPARATOR,
    conda_aliases,
    conda_display_name,
    conda_metadata,
    fallback_name,
    jupyter_name,
    nb_conda_env_names,
    nb_conda_name,
)
from .specs import DEFAULT_RESOURCE_DIR, kernelspec_dict, synced_type_id

__all__ = ["Entry", "Table", "build_table"]

#: jupyter_client's name for "the Python kernel", which it makes up when no folder has it.
NATIVE_KERNEL_NAME = "python3"


class Entry:
    """One kernel type as a kernelspec: its name, type id, spec dict and resource folder."""

    __slots__ = ("_resources", "attrs", "name", "resource_dir", "spec", "synced", "type_id")

    def __init__(
        self, name: str, type_id: str, attrs: Mapping[str, Any], spec: dict[str, Any], synced: bool
    ) -> None:
        self.name = name
        self.type_id = type_id
        self.attrs = attrs
        self.spec = spec
        self.synced = synced
        self.resource_dir = str(attrs.get("resource_dir") or DEFAULT_RESOURCE_DIR)
        self._resources: tuple[int, str, dict[str, str]] | None = None

    def resources(self, base_url: str) -> dict[str, str]:
        """Resource URLs (logos, kernel.js), re-read only when the folder's mtime changes."""
        from .specs import resource_urls

        try:
            mtime = os.stat(self.resource_dir).st_mtime_ns
        except OSError:
            return {}
        cached = self._resources
        if cached is None or cached[0] != mtime or cached[1] != base_url:
            cached = self._resources = (
                mtime,
                base_url,
                resource_urls(base_url, self.name, self.resource_dir),
            )
        return dict(cached[2])


class Table:
    """Names → entries, aliases → names, and what the last build had to say.

    Names and aliases are matched case-insensitively (as jupyter_client matches kernelspec
    folder names), but listed as spelled: JupyterLab compares a notebook's kernel name
    exactly, and nb_conda_kernels keeps an environment's case (``conda-env-MyEnv-py``).
    """

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        #: alias (as spelled) → the name it stands for.
        self.aliases: dict[str, str] = {}
        #: listed name → the aliases its own kernel type answers to (what sync writes too).
        self.own_aliases: dict[str, list[str]] = {}
        self.by_type: dict[str, str] = {}
        self.notes: list[str] = []
        self._folded: dict[str, str] = {}  # lower-cased name or alias → name

    def taken(self, name: str) -> bool:
        """Whether ``name`` is a name or an alias here (case-insensitive)."""
        return name.lower() in self._folded

    def _add_alias(self, alias: str, name: str) -> bool:
        if self.taken(alias) or name not in self.entries:
            return False
        self.aliases[alias] = name
        self._folded[alias.lower()] = name
        return True

    def lookup(self, name: str) -> Entry | None:
        """The entry for a name, an alias or a type id (case-insensitive), or None."""
        entries = self.entries
        entry = entries.get(name)
        if entry is not None:
            return entry
        folded = name.lower()
        target = self._folded.get(folded)
        if target is not None:
            return entries.get(target)
        by_type = self.by_type.get(name)
        if by_type is None and "/" in name:
            # Type ids are case-insensitive where the provider's names are (spec, conda).
            by_type = next((n for t, n in self.by_type.items() if t.lower() == folded), None)
        return entries.get(by_type) if by_type is not None else None


def _conda_order(
    records: list[tuple[str, Mapping[str, Any]]],
) -> tuple[list[tuple[str, Mapping[str, Any], Mapping[str, Any]]], dict[str, str]]:
    """Conda kernels with the provider's metadata in a fixed order (base environments, then
    by environment path, then by type id), and nb_conda_kernels' environment names."""
    condas = []
    for type_id, attrs in records:
        conda = conda_metadata(attrs) if type_id.startswith("conda/") else None
        if conda is not None:
            condas.append((type_id, attrs, conda))
    env_names = nb_conda_env_names(c for _, _, c in condas)
    condas.sort(key=lambda r: (not r[2].get("is_base"), str(r[2]["env_prefix"]).rstrip("/"), r[0]))
    return condas, env_names


def build_table(
    records: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    previous: Table | None = None,
    conda_format: str | None = "{display_name} [conda env:{env}]",
    native_alias: bool = True,
) -> Table:
    """Give every kernel type its name; reuse ``previous``'s entries whose attributes match.

    Kernelspec folders (``spec/...``) claim their names first, then conda kernels their
    nb_conda_kernels names (in :func:`_conda_order`), then every other type its canonical
    name (see :mod:`kernel_mgmt_jupyter.names`); a conda kernel whose nb_conda_kernels name is
    taken gets its canonical name and a note. A synced folder (``kernel-mgmt-jupyter sync``)
    is skipped when the type it stands for is listed, and listed as itself otherwise (its
    launch then explains).
    """
    old = previous.entries if previous is not None else {}
    old_by_type = previous.by_type if previous is not None else {}
    table = Table()
    entries = table.entries
    spec_records: list[tuple[str, Mapping[str, Any]]] = []
    other_records: list[tuple[str, Mapping[str, Any]]] = []
    synced: list[tuple[str, Mapping[str, Any], str]] = []
    for type_id, attrs in records:
        if type_id.startswith("spec/"):
            target = synced_type_id(attrs)
            if target is not None:
                synced.append((type_id, attrs, target))
            else:
                spec_records.append((type_id, attrs))
        else:
            other_records.append((type_id, attrs))
    condas, env_names = _conda_order(other_records)

    def add(
        name: str,
        type_id: str,
        attrs: Mapping[str, Any],
        is_synced: bool = False,
        env: str | None = None,
    ) -> None:
        display = None
        if conda_format and type_id.startswith("conda/") and not is_synced:
            display = conda_display_name(attrs["display_name"], conda_format, env)
        cached_name = old_by_type.get(type_id)
        cached = old.get(cached_name) if cached_name == name else None
        if (
            cached is not None
            and cached.attrs == attrs
            and (display is None or cached.spec["display_name"] == display)
        ):
            entry = cached
        else:
            if is_synced:
                # The folder's own kernel.json, as sync wrote it (provisioner config included).
                spec = kernelspec_dict(type_id, attrs, display_name=attrs["display_name"])
                spec["metadata"] = dict(attrs.get("metadata") or {})
            else:
                spec = kernelspec_dict(type_id, attrs, display_name=display)
            entry = Entry(name, type_id, attrs, spec, is_synced)
        entries[name] = entry
        table._folded[name.lower()] = name
        table.by_type[type_id] = name

    for type_id, attrs in spec_records:
        add(jupyter_name(type_id), type_id, attrs)
    canonical = [(t, a) for t, a in other_records if conda_metadata(a) is None or t[:6] != "conda/"]
    for type_id, attrs, conda in condas:
        env = env_names[str(conda["env_prefix"]).rstrip("/" + os.sep)]
        name = nb_conda_name(env, bool(conda.get("is_base")), conda)
        if SEPARATOR in name or table.taken(name):
            holder = table.lookup(name)
            why = f"kernel {holder.type_id!r} has it" if holder is not None else "it holds '__'"
            table.notes.append(
                f"kernel type {type_id!r} is listed as {jupyter_name(type_id)!r}, not under "
                f"its nb_conda_kernels name {name!r}: {why}"
            )
            canonical.append((type_id, attrs))
            continue
        add(name, type_id, attrs, env=env)
    for type_id, attrs in canonical:
        name = jupyter_name(type_id)
        if table.taken(name):
            holder = table.lookup(name)
            taken_by = holder.type_id if holder is not None else name
            name = fallback_name(type_id)
            table.notes.append(
                f"kernel type {type_id!r} is listed as {name!r}: kernelspec {taken_by!r} "
                f"has the name {jupyter_name(type_id)!r}"
            )
        conda = conda_metadata(attrs) if type_id.startswith("conda/") else None
        env = env_names.get(str(conda["env_prefix"]).rstrip("/" + os.sep)) if conda else None
        add(name, type_id, attrs, env=env)
    synced_aliases: list[tuple[str, str]] = []
    live = set(table.by_type)
    for type_id, attrs, target in synced:
        if target in live:
            continue  # the live type is listed under its own name
        alias_of = (attrs.get("metadata") or {}).get("kernel_mgmt", {}).get("alias_of")
        if isinstance(alias_of, str):
            synced_aliases.append((jupyter_name(type_id), alias_of))
            continue  # a copy under another name the type answered to: an alias
        name = jupyter_name(type_id)
        if table.taken(name):
            continue  # a live kernel has this name now
        # Listed under the gone type's id: its launch says the type is gone and what to run.
        add(name, target, attrs, is_synced=True)

    for type_id, attrs, _ in condas:
        name = table.by_type[type_id]
        wanted = [jupyter_name(type_id), *conda_aliases(attrs)]
        own = [alias for alias in wanted if table._add_alias(alias, name)]
        if own:
            table.own_aliases[name] = own
    for alias, name in synced_aliases:
        table._add_alias(alias, name)
    if native_alias and not table.taken(NATIVE_KERNEL_NAME) and "pyimport/kernel" in table.by_type:
        # jupyter_client makes up "python3" from ipykernel when no folder has it: so do we.
        table._add_alias(NATIVE_KERNEL_NAME, table.by_type["pyimport/kernel"])
    return table
