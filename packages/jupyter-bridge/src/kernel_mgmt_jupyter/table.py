"""The name table: every kernel type under its Jupyter name, with aliases, built per listing.

Kept apart from the spec manager so the rules (who gets a name, which folders are ours) are
plain functions of the listing: see :mod:`kernel_mgmt_jupyter.names` for the scheme.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from .names import conda_aliases, conda_display_name, fallback_name, jupyter_name
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
    """Names → entries, aliases → names, and what the last build had to say."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.aliases: dict[str, str] = {}
        self.by_type: dict[str, str] = {}
        self.notes: list[str] = []

    def lookup(self, name: str) -> Entry | None:
        """The entry for a name, an alias or a type id (case-insensitive), or None."""
        entries = self.entries
        entry = entries.get(name)
        if entry is not None:
            return entry
        folded = name.lower()
        entry = entries.get(folded)
        if entry is not None:
            return entry
        alias = self.aliases.get(folded)
        if alias is not None:
            return entries.get(alias)
        by_type = self.by_type.get(name)
        if by_type is None and "/" in name:
            # Type ids are case-insensitive where the provider's names are (spec, conda).
            by_type = next((n for t, n in self.by_type.items() if t.lower() == folded), None)
        return entries.get(by_type) if by_type is not None else None


def build_table(
    records: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    previous: Table | None = None,
    conda_format: str | None = "{display_name} [conda env:{env}]",
    native_alias: bool = True,
) -> Table:
    """Give every kernel type its name; reuse ``previous``'s entries whose attributes match.

    Kernelspec folders (``spec/...``) claim their names first, then the other providers' types
    in listing order; a synced folder (``kernel-mgmt-jupyter sync``) is skipped when the type it
    stands for is listed, and listed as itself otherwise (its launch then explains).
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

    def add(name: str, type_id: str, attrs: Mapping[str, Any], is_synced: bool = False) -> None:
        cached_name = old_by_type.get(type_id)
        cached = old.get(cached_name) if cached_name == name else None
        if cached is not None and cached.attrs == attrs:
            entry = cached
        else:
            display = None
            if conda_format and type_id.startswith("conda/"):
                display = conda_display_name(attrs["display_name"], conda_format)
            if is_synced:
                # The folder's own kernel.json, as sync wrote it (provisioner config included).
                spec = kernelspec_dict(type_id, attrs, display_name=attrs["display_name"])
                spec["metadata"] = dict(attrs.get("metadata") or {})
            else:
                spec = kernelspec_dict(type_id, attrs, display_name=display)
            entry = Entry(name, type_id, attrs, spec, is_synced)
        entries[name] = entry
        table.by_type[type_id] = name

    for type_id, attrs in spec_records:
        add(jupyter_name(type_id), type_id, attrs)
    for type_id, attrs in other_records:
        name = jupyter_name(type_id)
        if name in entries:
            taken_by = entries[name].type_id
            name = fallback_name(type_id)
            table.notes.append(
                f"kernel type {type_id!r} is listed as {name!r}: kernelspec {taken_by!r} "
                f"has the name {jupyter_name(type_id)!r}"
            )
        add(name, type_id, attrs)
    synced_aliases: list[tuple[str, str]] = []
    live = set(table.by_type)
    for type_id, attrs, target in synced:
        if target in live:
            continue  # the live type is listed under this very name
        alias_of = (attrs.get("metadata") or {}).get("kernel_mgmt", {}).get("alias_of")
        if isinstance(alias_of, str):
            synced_aliases.append((jupyter_name(type_id), alias_of))
            continue  # an nb_conda_kernels-named copy: an alias, as for a live type
        # Listed under the gone type's id: its launch says the type is gone and what to run.
        add(jupyter_name(type_id), target, attrs, is_synced=True)

    aliases = table.aliases
    for type_id, attrs in other_records:
        if not type_id.startswith("conda/"):
            continue
        for alias in conda_aliases(attrs):
            if alias not in entries and alias not in aliases:
                aliases[alias] = table.by_type[type_id]
    for alias, name in synced_aliases:
        if name in entries and alias not in entries:
            aliases.setdefault(alias, name)
    if native_alias and NATIVE_KERNEL_NAME not in entries and "pyimport/kernel" in table.by_type:
        # jupyter_client makes up "python3" from ipykernel when no folder has it: so do we.
        aliases.setdefault(NATIVE_KERNEL_NAME, table.by_type["pyimport/kernel"])
    return table
