"""The kernel.json format: schema, reading, validation, writing and installation.

Shared by the spec and conda providers and by wrapper_kernel's installer. Reading is light
(a hand check of the required keys and their types, no jsonschema import) because
``kernel-mgmt list`` reads every kernel.json on the machine; :func:`validate_kernel_spec`
runs the full JSON Schema check when a caller can afford it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from . import paths

__all__ = [
    "INTERRUPT_MODES",
    "KERNEL_SPEC_SCHEMA",
    "NAME_RE",
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

#: Kernel names: ASCII lower-case letters, digits and ``. _ -``. Folder names are lower-cased
#: before matching, so ``Python3`` and ``python3`` are the same kernel (as in jupyter_client).
NAME_RE = re.compile(r"^[a-z0-9._-]+$")
NAME_RULE = (
    "kernel names may only contain ASCII letters, digits and the separators '-', '.' and '_'"
)
INTERRUPT_MODES = ("signal", "message")
ARGV_MEANING = "the command line that starts the kernel"
KERNEL_FILE = "kernel.json"
_KERNEL_FILE_SUFFIX = os.sep + KERNEL_FILE

#: The kernel.json format as a JSON Schema (draft 2020-12). Unknown keys are allowed and kept.
KERNEL_SPEC_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://kernel-mgmt.invalid/schemas/kernel.json",
    "title": "Jupyter kernel specification (kernel.json)",
    "type": "object",
    "required": ["argv", "display_name", "language"],
    "properties": {
        "argv": {
            "description": "Command line that starts the kernel; {connection_file} is replaced.",
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
        },
        "display_name": {"description": "Name shown to users.", "type": "string"},
        "language": {"description": "The kernel's language, e.g. 'python'.", "type": "string"},
        "interrupt_mode": {
            "description": "How clients interrupt: a signal to the process or a control message.",
            "enum": list(INTERRUPT_MODES),
        },
        "env": {
            "description": "Environment variables added to the kernel's environment.",
            "type": "object",
            "additionalProperties": {"type": "string"},
        },
        "metadata": {
            "description": "Free-form, namespaced metadata.",
            "type": "object",
            "properties": {
                "launch_parameter_schema": {
                    "description": "JSON Schema for the launch_params of this kernel.",
                    "type": "object",
                }
            },
        },
        "kernel_protocol_version": {"type": "string"},
    },
    "additionalProperties": True,
}


class InvalidKernelSpec(ValueError):
    """A kernel.json that cannot be read or does not follow the kernelspec format."""

    def __init__(self, path: str | None, problem: str) -> None:
        self.path = path
        self.problem = problem
        where = path or "kernel spec"
        super().__init__(f"{where}: {problem}")


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


def is_valid_kernel_name(name: str) -> bool:
    """Whether ``name`` (compared lower-cased) follows the kernel name rule."""
    return bool(NAME_RE.match(name.lower()))


def kernel_search_path() -> list[str]:
    """Jupyter's kernelspec search path, highest priority first."""
    return paths.jupyter_path("kernels")


def user_kernel_dir() -> str:
    """The per-user kernelspec directory (``<jupyter data dir>/kernels``)."""
    return os.path.join(paths.jupyter_data_dir(), "kernels")


def _check(
    spec: Any, path: str | None, *, strict: bool = False, launchable: bool = True
) -> dict[str, Any]:
    """Hand-written check of the schema's keys and types (no jsonschema import).

    Reading is as lenient as jupyter_client, which lists a kernel.json that leaves out
    ``display_name``, ``language`` or ``argv`` (its traits default to ``""``/``[]``) but not one
    holding a value of the wrong type. ``strict`` (writing) requires the first two;
    ``launchable`` requires a non-empty ``argv``: without one there is nothing to start.

    Written for speed (``kernel-mgmt list`` runs it on every kernel.json): JSON objects are
    exactly ``dict``/``list``/``str``, so ``type(x) is`` checks are exact here.
    """
    if type(spec) is not dict:
        raise InvalidKernelSpec(path, f"expected a JSON object, got {type(spec).__name__}")
    argv = spec.get("argv")
    if argv is None:
        if "argv" in spec:
            raise InvalidKernelSpec(path, "'argv' must be a list of strings, not null")
        if launchable:
            raise InvalidKernelSpec(path, f"missing required key 'argv' ({ARGV_MEANING})")
    else:
        if type(argv) is not list:
            raise InvalidKernelSpec(path, "'argv' must be a list of strings")
        for arg in argv:  # a plain loop: cheaper than any(<generator>) on this hot path
            if type(arg) is not str:
                raise InvalidKernelSpec(path, "'argv' must be a list of strings")
        if not argv and launchable:
            raise InvalidKernelSpec(path, f"'argv' is empty ({ARGV_MEANING})")
    for key in ("display_name", "language"):
        value = spec.get(key)
        if type(value) is not str:
            if key not in spec:
                if strict:
                    raise InvalidKernelSpec(path, f"missing required key {key!r}")
                continue  # kernel_attributes fills in a default
            raise InvalidKernelSpec(path, f"{key!r} must be a string")
    mode = spec.get("interrupt_mode", "signal")
    if mode not in INTERRUPT_MODES:
        # jupyter_client accepts any case ("Signal"): so do we, storing the canonical form.
        if type(mode) is not str or mode.lower() not in INTERRUPT_MODES:
            raise InvalidKernelSpec(
                path, f"'interrupt_mode' must be 'signal' or 'message', not {mode!r}"
            )
        spec["interrupt_mode"] = mode.lower()
    # Present-but-null values are wrong types, as in jupyter_client (its traits allow no None).
    env = spec.get("env")  # JSON object keys are always strings: check the values
    if (env is not None or "env" in spec) and (
        type(env) is not dict or any(type(v) is not str for v in env.values())
    ):
        raise InvalidKernelSpec(path, "'env' must be an object mapping names to strings")
    metadata = spec.get("metadata")
    if metadata is not None or "metadata" in spec:
        if type(metadata) is not dict:
            raise InvalidKernelSpec(path, "'metadata' must be an object")
        schema = metadata.get("launch_parameter_schema")
        if schema is not None and type(schema) is not dict:
            raise InvalidKernelSpec(path, "'metadata.launch_parameter_schema' must be an object")
    version = spec.get("kernel_protocol_version")
    if type(version) is not str and "kernel_protocol_version" in spec:
        raise InvalidKernelSpec(path, "'kernel_protocol_version' must be a string")
    return spec


_CHUNK = 65536


def _read_bytes(path: str) -> bytes:
    # os.open/os.read: three syscalls, no buffered file object; listing reads hundreds.
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:
            return data  # the usual kernel.json: one read
        chunks = [data]
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


_decode_json = json.JSONDecoder().decode


def parse_kernel_spec(data: bytes, path: str, *, launchable: bool = True) -> dict[str, Any]:
    """Parse and check the bytes of a kernel.json already read from ``path``.

    For providers that read files themselves (e.g. to take their mtime from the open file);
    the same light check as :func:`read_kernel_spec`, unknown keys kept.

    :raises InvalidKernelSpec: bad UTF-8/JSON, a mistyped key, or (``launchable``) no argv.
    """
    try:
        # UTF-8, as jupyter_client reads kernel.json (and no encoding sniffing to pay for).
        spec = _decode_json(data.decode("utf-8"))
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise InvalidKernelSpec(path, f"not valid JSON: {e}") from e
    return _check(spec, path, launchable=launchable)


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


def validate_kernel_spec(spec: Mapping[str, Any], path: str | None = None) -> None:
    """Check ``spec`` against :data:`KERNEL_SPEC_SCHEMA` with jsonschema (full check).

    :raises InvalidKernelSpec: naming ``path`` and the offending key.
    """
    import jsonschema  # deferred: ~85 ms to import, only needed for full validation

    validator = jsonschema.Draft202012Validator(KERNEL_SPEC_SCHEMA)
    error = jsonschema.exceptions.best_match(validator.iter_errors(spec))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise InvalidKernelSpec(path, f"at {where}: {error.message}")


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
