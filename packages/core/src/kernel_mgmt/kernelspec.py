"""Kernelspecs: finding, reading, writing and installing kernel.json folders.

Shared by the spec and conda providers and by wrapper_kernel's installer. Reading is light
(a hand check of the required keys and their types, no jsonschema import) because
``kernel-mgmt list`` reads every kernel.json on the machine; :func:`validate_kernel_spec`
runs the full JSON Schema check when a caller can afford it. The format itself (name rule,
schema, checks) is :mod:`kernel_mgmt.kernelspec_format`, re-exported here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from . import paths
from .kernelspec_format import (
    ARGV_MEANING,
    INTERRUPT_MODES,
    KERNEL_FILE,
    KERNEL_SPEC_SCHEMA,
    NAME_RE,
    NAME_RULE,
    InvalidKernelSpec,
    _check,
    _read_bytes,
    is_valid_kernel_name,
    parse_kernel_spec,
    validate_kernel_spec,
)

__all__ = [
    "ARGV_MEANING",
    "INTERRUPT_MODES",
    "KERNEL_FILE",
    "KERNEL_SPEC_SCHEMA",
    "NAME_RE",
    "NAME_RULE",
    "InvalidKernelSpec",
    "NoSuchKernelSpec",
    "expand_env",
    "find_kernel_spec",
    "find_kernel_specs",
    "install_kernel_spec",
    "is_valid_kernel_name",
    "iter_kernel_specs",
    "kernel_attributes",
    "kernel_search_path",
    "parse_kernel_spec",
    "read_kernel_spec",
    "remove_kernel_spec",
    "user_kernel_dir",
    "validate_kernel_spec",
    "write_kernel_spec",
]

_KERNEL_FILE_SUFFIX = os.sep + KERNEL_FILE


class NoSuchKernelSpec(KeyError):
    """No kernelspec folder of that name on the search path (a KeyError, as jupyter_client's)."""

    def __init__(self, name: str, search_path: Iterable[str]) -> None:
        self.name = name
        self.search_path = list(search_path)
        where = os.pathsep.join(self.search_path) or "(empty path)"
        self.message = f"no kernelspec named {name!r} in {where}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message  # not KeyError's repr() of it


def kernel_search_path() -> list[str]:
    """Jupyter's kernelspec search path, highest priority first."""
    return paths.jupyter_path("kernels")


def user_kernel_dir() -> str:
    """The per-user kernelspec directory (``<jupyter data dir>/kernels``)."""
    return os.path.join(paths.jupyter_data_dir(), "kernels")


def read_kernel_spec(resource_dir: str, *, launchable: bool = True) -> dict[str, Any]:
    """Read and check ``<resource_dir>/kernel.json``; unknown keys are kept.

    ``display_name`` and ``language`` may be missing (see :func:`kernel_attributes`), as
    jupyter_client allows. ``launchable=False`` also accepts a missing or empty ``argv``:
    jupyter_client lists such a kernelspec, though nothing can start it.

    :raises InvalidKernelSpec: unreadable file, bad JSON, a key of the wrong type, or
        (``launchable``) no argv; the message names the file.
    """
    path = os.path.join(resource_dir, KERNEL_FILE)
    try:
        data = _read_bytes(path)
    except OSError as e:
        raise InvalidKernelSpec(path, f"cannot read: {e.strerror or e}") from e
    return parse_kernel_spec(data, path, launchable=launchable)


def iter_kernel_specs(
    search_path: Iterable[str] | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> Iterator[tuple[str, str, dict[str, Any] | InvalidKernelSpec]]:
    """Yield ``(name, resource_dir, spec or InvalidKernelSpec)`` for each kernel on the path.

    One pass that lists each kernels folder and reads each kernel.json once (the fast path
    of the spec provider). Specs are read as jupyter_client lists them: a missing or empty
    ``argv`` is accepted. Same rules as :func:`find_kernel_specs`: lower-cased names, the
    first folder of a name wins even when its kernel.json turns out broken (as in
    jupyter_client), folders with invalid names are reported in ``skipped``.
    """
    seen: set[str] = set()
    for kernel_dir in kernel_search_path() if search_path is None else search_path:
        try:
            entries = sorted(os.scandir(kernel_dir), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            key = entry.name.lower()
            if key in seen:
                continue
            path = entry.path + _KERNEL_FILE_SUFFIX
            try:
                if not entry.is_dir():
                    continue
                data = _read_bytes(path)
            except (FileNotFoundError, NotADirectoryError):
                continue  # not a kernelspec folder
            except OSError as e:
                data = e
            if not NAME_RE.match(key):
                if skipped is not None:
                    skipped.append((entry.path, f"invalid kernelspec folder name: {NAME_RULE}"))
                continue
            seen.add(key)
            if isinstance(data, OSError):
                yield key, entry.path, InvalidKernelSpec(path, f"cannot read: {data.strerror}")
                continue
            try:
                yield key, entry.path, parse_kernel_spec(data, path, launchable=False)
            except InvalidKernelSpec as e:
                yield key, entry.path, e


def find_kernel_specs(
    search_path: Iterable[str] | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> dict[str, str]:
    """Map lower-cased kernel name → resource directory; the first directory on the path wins.

    ``search_path`` defaults to :func:`kernel_search_path`. Folders whose name breaks
    :data:`NAME_RE` are left out; pass a list as ``skipped`` to receive ``(path, reason)``
    for each of them.
    """
    found: dict[str, str] = {}
    for kernel_dir in kernel_search_path() if search_path is None else search_path:
        try:
            entries = sorted(os.scandir(kernel_dir), key=lambda e: e.name)
        except OSError:
            continue  # missing or unreadable directories on the path are normal
        for entry in entries:
            key = entry.name.lower()
            if key in found:
                continue
            try:
                if not entry.is_dir() or not os.path.isfile(os.path.join(entry.path, KERNEL_FILE)):
                    continue
            except OSError:
                continue
            if not NAME_RE.match(key):
                if skipped is not None:
                    skipped.append((entry.path, f"invalid kernelspec folder name: {NAME_RULE}"))
                continue
            found[key] = entry.path
    return found


def find_kernel_spec(name: str, search_path: Iterable[str] | None = None) -> str:
    """Resource directory of kernel ``name`` (case-insensitive).

    :raises NoSuchKernelSpec: when no folder of that name is on the path.
    """
    search = kernel_search_path() if search_path is None else list(search_path)
    found = find_kernel_specs(search)
    try:
        return found[name.lower()]
    except KeyError:
        raise NoSuchKernelSpec(name, search) from None


def kernel_attributes(spec: Mapping[str, Any], resource_dir: str) -> dict[str, Any]:
    """The attributes a provider yields for a kernelspec: the spec plus filled-in defaults.

    Adds ``resource_dir``, ``language_info: {"name": language}``, and defaults for
    ``interrupt_mode`` ("signal"), ``env``, ``metadata``, and for the keys jupyter_client also
    lets a kernel.json leave out: ``language`` (""), ``argv`` ([]) and ``display_name`` (the
    folder's name, more useful than jupyter_client's ""). Unknown keys are kept.
    """
    attrs = dict(spec)
    attrs["resource_dir"] = resource_dir
    if "display_name" not in attrs:
        attrs["display_name"] = os.path.basename(resource_dir.rstrip("/" + os.sep))
    attrs.setdefault("language", "")
    attrs.setdefault("argv", [])
    attrs.setdefault("interrupt_mode", "signal")
    attrs.setdefault("env", {})
    attrs.setdefault("metadata", {})
    if "language_info" not in attrs:
        attrs["language_info"] = {"name": attrs.get("language", "")}
    return attrs


def write_kernel_spec(dest_dir: str, spec: Mapping[str, Any]) -> str:
    """Write ``spec`` as ``<dest_dir>/kernel.json`` (creating the folder); returns ``dest_dir``.

    :raises InvalidKernelSpec: when ``spec`` does not follow the format (nothing is written).
    """
    path = os.path.join(dest_dir, KERNEL_FILE)
    checked = _check(dict(spec), path, strict=True)
    try:  # serialised first: a value JSON cannot hold must not leave a half-written file
        data = json.dumps(checked, indent=1, sort_keys=True) + "\n"
    except (TypeError, ValueError) as e:
        raise InvalidKernelSpec(path, f"cannot be written as JSON: {e}") from e
    os.makedirs(dest_dir, exist_ok=True)
    tmp = f"{path}.{os.getpid()}-{os.urandom(4).hex()}.tmp"  # concurrent writers never share it
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(data)
        os.replace(tmp, path)  # atomic: a reader never sees half a kernel.json
    except BaseException:
        import contextlib  # deferred: only a failed write needs it

        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return dest_dir


def _destination(kernel_name: str, user: bool, prefix: str | None) -> str:
    if user:
        return os.path.join(user_kernel_dir(), kernel_name)
    if prefix:
        return os.path.join(os.path.abspath(prefix), "share", "jupyter", "kernels", kernel_name)
    return os.path.join(paths.system_jupyter_path()[0], "kernels", kernel_name)


def install_kernel_spec(
    source_dir: str,
    kernel_name: str | None = None,
    user: bool = False,
    prefix: str | None = None,
    replace: bool | None = None,
) -> str:
    """Copy a kernelspec folder into a kernels directory; returns the installed path.

    The destination is the user directory (``user=True``), ``<prefix>/share/jupyter/kernels``
    or the first system directory. ``kernel_name`` defaults to the folder's name and is
    lower-cased. An existing installation is replaced unless ``replace`` is ``False``
    (then :class:`FileExistsError`). The source kernel.json is checked before anything is copied.
    """
    source_dir = os.fspath(source_dir).rstrip("/\\")
    name = (kernel_name or os.path.basename(source_dir)).lower()
    if not NAME_RE.match(name):
        raise ValueError(f"invalid kernel name {name!r}: {NAME_RULE}")
    if user and prefix:
        raise ValueError("install_kernel_spec: give either user=True or prefix, not both")
    read_kernel_spec(source_dir)
    destination = _destination(name, user, prefix)
    if os.path.realpath(source_dir) == os.path.realpath(destination):
        return destination  # already installed there: replacing it would delete the source
    import shutil  # deferred: listing never installs

    if os.path.lexists(destination):
        if replace is False:
            raise FileExistsError(
                f"kernelspec {name!r} already installed at {destination}; pass replace=True"
            )
        if os.path.islink(destination) or not os.path.isdir(destination):
            os.remove(destination)
        else:
            shutil.rmtree(destination)
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    shutil.copytree(source_dir, destination)
    return destination


def remove_kernel_spec(name: str, search_path: Iterable[str] | None = None) -> str:
    """Delete the kernelspec folder that ``name`` resolves to; returns its path.

    :raises NoSuchKernelSpec: when no such kernelspec is on the search path.
    """
    import shutil

    spec_dir = find_kernel_spec(name, search_path)
    if os.path.islink(spec_dir):
        os.remove(spec_dir)
    else:
        shutil.rmtree(spec_dir)
    return spec_dir


def expand_env(env: Mapping[str, str] | None, base: Mapping[str, str]) -> dict[str, str]:
    """Fill ``${VAR}``/``$VAR`` in a kernelspec's ``env`` values from ``base``.

    As jupyter_client does (``string.Template.safe_substitute``), so that specs written for it,
    like ``"PATH": "/opt/k/bin:${PATH}"``, work; unknown names stay literal.
    """
    if not env:
        return {}
    from string import Template

    return {k: Template(v).safe_substitute(base) for k, v in env.items()}
