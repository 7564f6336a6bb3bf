"""The kernel.json format itself: name rule, JSON Schema, and the light check of a parsed file.

:mod:`kernel_mgmt.kernelspec` (which re-exports every name here) finds, reads, writes and
installs kernelspecs; this module says what a valid one is. The light check (required keys and
their types, no jsonschema import) runs on every kernel.json ``kernel-mgmt list`` reads;
:func:`validate_kernel_spec` runs the full JSON Schema check when a caller can afford it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ARGV_MEANING",
    "INTERRUPT_MODES",
    "KERNEL_FILE",
    "KERNEL_SPEC_SCHEMA",
    "NAME_RE",
    "NAME_RULE",
    "InvalidKernelSpec",
    "is_valid_kernel_name",
    "parse_kernel_spec",
    "validate_kernel_spec",
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


def is_valid_kernel_name(name: str) -> bool:
    """Whether ``name`` (compared lower-cased) follows the kernel name rule."""
    return bool(NAME_RE.match(name.lower()))


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
