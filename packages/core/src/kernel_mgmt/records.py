"""Checking what a provider's ``find_kernels`` yields, record by record.

Each record must be a ``(name, attributes)`` pair with a name free of ``/`` and spaces, a
string ``display_name`` and a ``language`` (the seed's ``{"name": ...}`` form is accepted);
``language_info`` is filled in when missing. A bad record is reported (naming the kernel) and
skipped; the provider's other kernels still appear.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["check_record"]

_BAD_NAME_RE = re.compile(r"[/\s]")


def check_record(
    record: Any, seen: Mapping[str, Any], report: Callable[[str], None]
) -> tuple[str, dict[str, Any]] | None:
    """Validate and normalise one ``(name, attributes)`` record; None (reported) if bad.

    ``type(x) is`` fast paths first: this runs for every kernel on every listing, and
    ``isinstance(x, Mapping)`` (an ABC check) is several times slower.
    """
    if not isinstance(record, (tuple, list)) or len(record) != 2:
        report(f"find_kernels yielded {record!r:.80}, not a (name, attributes) pair")
        return None
    name, attrs = record
    if type(name) is not str or not name or _BAD_NAME_RE.search(name):
        report(f"kernel name {name!r:.80} must be a non-empty string without '/' or spaces")
        return None
    if type(attrs) is not dict and not isinstance(attrs, Mapping):
        report(f"kernel {name!r}: attributes must be a dict, not {type(attrs).__name__}")
        return None
    if name in seen:
        report(f"kernel {name!r} yielded twice; keeping the first")
        return None
    if type(attrs.get("display_name")) is not str:
        report(f"kernel {name!r}: 'display_name' must be a string")
        return None
    language = attrs.get("language")
    language_info = attrs.get("language_info")
    has_info = type(language_info) is dict or isinstance(language_info, Mapping)
    fixes: dict[str, Any] = {}
    if type(language) is str:
        if not has_info:
            fixes["language_info"] = {"name": language}
    elif isinstance(language, Mapping) and isinstance(language.get("name"), str):
        # The seed's oblong example passes language as {"name": ...}: accept it.
        fixes["language"] = language["name"]
        if not has_info:
            fixes["language_info"] = dict(language)
    else:
        report(f"kernel {name!r}: 'language' must be a string")
        return None
    metadata = attrs.get("metadata")
    if metadata is not None and type(metadata) is not dict and not isinstance(metadata, Mapping):
        report(f"kernel {name!r}: 'metadata' must be a dict")
        return None
    # Copy only when something changes: the spec provider's records are already complete.
    if fixes or type(attrs) is not dict:
        attrs = {**attrs, **fixes}
    return name, attrs
