"""``kernel-mgmt-jupyter sync``: kernelspec folders for tools that read only folders.

nbclient, papermill, ``jupyter execute``, ``jupyter console`` and nbconvert use jupyter_client's
plain KernelSpecManager, which reads ``<data dir>/kernels/*/kernel.json``. For every kernel type
that is not already a folder (every provider but ``spec``) sync writes one, named as the spec
manager lists it (:mod:`kernel_mgmt_jupyter.names`: conda kernels under their nb_conda_kernels
names), whose kernel.json names the ``kernel-mgmt`` provisioner; every other name a type answers
to (a conda kernel's canonical ``conda__<env>-<kernel>``, ``conda-root-py``) gets a folder too,
marked as an alias, so notebooks saved with any of them run on the same environment. Folders
written under the earlier scheme (``conda__...`` listed, nb_conda_kernels names as aliases) are
ours by their marker and are updated in place.

Folders it writes are marked (``metadata.kernel_mgmt.synced``); only marked folders are ever
updated or removed, and a folder of the same name that is not ours is left alone (reported).
``--prune`` removes marked folders whose kernel type is gone, but keeps those of a provider
that failed this time (a broken provider is not a removed one).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from . import __version__
from .specs import MARKER, synced_type_id

__all__ = ["Action", "SyncReport", "kernels_dir", "sync"]

KERNEL_FILE = "kernel.json"
#: Files copied from a kernel type's resource folder (what jupyter_server serves for it).
_RESOURCE_PREFIXES = ("logo-",)
_RESOURCE_FILES = ("kernel.js", "kernel.css")


def kernels_dir(*, user: bool = False, sys_prefix: bool = False, prefix: str | None = None) -> str:
    """The ``kernels`` folder of the Jupyter data dir chosen (``user`` when none is chosen)."""
    chosen = sum(bool(x) for x in (user, sys_prefix, prefix))
    if chosen > 1:
        raise ValueError("choose one of --user, --sys-prefix and --prefix")
    if prefix:
        return os.path.join(os.path.abspath(prefix), "share", "jupyter", "kernels")
    if sys_prefix:
        return os.path.join(sys.prefix, "share", "jupyter", "kernels")
    from jupyter_core.paths import jupyter_data_dir

    return os.path.join(jupyter_data_dir(), "kernels")


class Action:
    """What sync did (or would not do) with one folder."""

    def __init__(
        self, action: str, name: str, type_id: str | None, path: str, reason: str = ""
    ) -> None:
        self.action = action  # added | updated | unchanged | removed | kept | skipped
        self.name = name
        self.type_id = type_id
        self.path = path
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``--json``)."""
        return {
            "action": self.action,
            "name": self.name,
            "type_id": self.type_id,
            "path": self.path,
            "reason": self.reason,
        }

    def __str__(self) -> str:
        what = f"{self.action:<9} {self.name}"
        if self.type_id:
            what += f" ({self.type_id})"
        return what + (f": {self.reason}" if self.reason else "")


class SyncReport:
    """Every action, plus the providers' problems, for one sync run."""

    def __init__(self, target: str, flag: str) -> None:
        self.target = target
        self.flag = flag
        self.actions: list[Action] = []
        self.problems: list[str] = []

    def count(self, action: str) -> int:
        """How many folders got ``action``."""
        return sum(1 for a in self.actions if a.action == action)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``--json``)."""
        return {
            "target": self.target,
            "actions": [a.to_dict() for a in self.actions],
            "problems": list(self.problems),
        }


def _read(path: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(path, KERNEL_FILE), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _resources(resource_dir: str | None) -> list[str]:
    if not resource_dir or not os.path.isdir(resource_dir):
        return []
    try:
        names = sorted(os.listdir(resource_dir))
    except OSError:
        return []
    return [
        n
        for n in names
        if (n.startswith(_RESOURCE_PREFIXES) or n in _RESOURCE_FILES)
        and os.path.isfile(os.path.join(resource_dir, n))
    ]


def _same_files(src_dir: str, dest_dir: str, names: list[str]) -> bool:
    have = {n for n in os.listdir(dest_dir) if n != KERNEL_FILE}
    if have != set(names):
        return False
    for n in names:
        a, b = os.path.join(src_dir, n), os.path.join(dest_dir, n)
        if os.path.getsize(a) != os.path.getsize(b):
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            if fa.read() != fb.read():
                return False
    return True


def _write(path: str, spec: dict[str, Any], resource_dir: str | None, names: list[str]) -> None:
    """Write the folder afresh (kernel.json atomically, resource files copied)."""
    os.makedirs(path, exist_ok=True)
    for n in os.listdir(path):
        if n != KERNEL_FILE and n not in names:
            full = os.path.join(path, n)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
    for n in names:
        shutil.copyfile(os.path.join(str(resource_dir), n), os.path.join(path, n))
    tmp = os.path.join(path, f".{KERNEL_FILE}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, os.path.join(path, KERNEL_FILE))


def _wanted(
    records: Iterable[tuple[str, Mapping[str, Any]]], flag: str, conda_format: str | None
) -> dict[str, tuple[str, dict[str, Any], str | None]]:
    """``{folder name: (type_id, kernel.json, resource_dir)}`` for every non-spec type.

    Named as the spec manager lists them (the same name table, so the same collisions and
    fallbacks), folder names lower-cased as jupyter_client reads them; each type's aliases (a
    conda kernel's canonical ``conda__...`` name, ``conda-root-py``...) get folders too, marked
    ``alias_of`` the listed name, so folder-reading tools accept every name the bridge does.
    """
    from .table import build_table

    table = build_table(records, conda_format=conda_format, native_alias=False)
    wanted: dict[str, tuple[str, dict[str, Any], str | None]] = {}
    aliases: list[tuple[str, str, dict[str, Any], str | None]] = []
    for name, entry in table.entries.items():
        type_id = entry.type_id
        if entry.synced or type_id.startswith("spec/"):
            continue  # a folder already (ours, of a gone type, is handled by the caller)
        spec = json.loads(json.dumps(entry.spec))  # the entry's spec is shared: a copy
        spec["metadata"][MARKER].update(synced=True, sync_target=flag, version=__version__)
        resource_dir = entry.attrs.get("resource_dir")
        folder = name.lower()
        wanted[folder] = (type_id, spec, resource_dir)
        for alias in table.own_aliases.get(name, ()):
            aliased = json.loads(json.dumps(spec))
            aliased["metadata"][MARKER]["alias_of"] = folder
            aliases.append((alias.lower(), type_id, aliased, resource_dir))
    for alias, type_id, spec, resource_dir in aliases:
        wanted.setdefault(alias, (type_id, spec, resource_dir))  # a listed name wins
    return wanted


def sync(
    target: str,
    records: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    flag: str = "--user",
    failed_providers: Iterable[str] = (),
    prune: bool = False,
    conda_format: str | None = "{display_name} [conda env:{env}]",
    dry_run: bool = False,
    remove_all: bool = False,
) -> SyncReport:
    """Bring the kernelspec folders in ``target`` in line with ``records`` (type id, attrs).

    ``flag`` (``--user``, ``--sys-prefix`` or ``--prefix P``) is written into each folder so
    that the error for a vanished type can name the command that fixes it. ``remove_all``
    removes every folder sync wrote in ``target`` (``sync --remove``).
    """
    report = SyncReport(target, flag)
    failed = set() if remove_all else set(failed_providers)
    wanted = {} if remove_all else _wanted(records, flag, conda_format)
    prune = prune or remove_all
    existing: dict[str, tuple[str, dict[str, Any] | None]] = {}  # lower-cased: jupyter's rule
    if os.path.isdir(target):
        for entry in sorted(os.listdir(target)):
            path = os.path.join(target, entry)
            if os.path.isdir(path):
                existing.setdefault(entry.lower(), (path, _read(path)))
    for name, (type_id, spec, resource_dir) in wanted.items():
        path = os.path.join(target, name)
        names = _resources(resource_dir)
        if name in existing:
            path, current = existing[name]
            if current is None or synced_type_id(current) is None:
                report.actions.append(
                    Action("skipped", name, type_id, path, "a kernelspec that is not ours")
                )
                continue
            if current == spec and _same_files(str(resource_dir), path, names):
                report.actions.append(Action("unchanged", name, type_id, path))
                continue
            action = "updated"
        else:
            action = "added"
        if not dry_run:
            _write(path, spec, resource_dir, names)
        report.actions.append(Action(action, name, type_id, path))
    for name, (path, current) in existing.items():
        if name in wanted or current is None:
            continue
        type_id = synced_type_id(current)
        if type_id is None:
            continue  # not ours: never touched
        provider = type_id.partition("/")[0]
        if not prune:
            report.actions.append(
                Action("kept", name, type_id, path, "its kernel type is gone; --prune removes it")
            )
        elif provider in failed:
            report.actions.append(
                Action("kept", name, type_id, path, f"provider {provider!r} failed this time")
            )
        else:
            if not dry_run:
                shutil.rmtree(path)
            why = "--remove" if remove_all else "kernel type gone"
            report.actions.append(Action("removed", name, type_id, path, why))
    return report
