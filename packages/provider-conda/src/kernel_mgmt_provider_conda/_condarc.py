"""The part of conda's configuration files this provider needs, without a YAML library.

``.condarc`` files are YAML, but the keys we read (``envs_dirs`` / ``envs_path``,
``root_prefix``) are top-level scalars or lists of scalars. This module parses exactly that
subset: ``key: value``, ``key: [a, "b"]`` and block lists (``- item``), with quoting and
``#`` comments. Anything else (nested mappings, anchors) is skipped, never an error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

__all__ = ["condarc_search_path", "parse_condarc"]

#: System-wide locations conda reads before the per-user ones (conda's SEARCH_PATH).
#: Tests point this at a temporary folder.
SYSTEM_DIRS: tuple[str, ...] = (
    (os.path.join(os.environ.get("PROGRAMDATA", r"C:\ProgramData"), "conda"),)
    if sys.platform == "win32"
    else ("/etc/conda", "/var/lib/conda")
)

Value = str | list[str] | None


def _strip_comment(line: str) -> str:
    """Drop a ``#`` comment (YAML: ``#`` at the start or after whitespace, outside quotes)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"" and (i == 0 or line[i - 1] in " \t[,:-"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        body = text[1:-1]
        out = []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                out.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"', "/": "/"}.get(nxt, nxt))
                i += 2
                continue
            out.append(ch)
            i += 1
        return "".join(out)
    return text


def _split_flow(body: str) -> list[str]:
    """Split the inside of ``[a, 'b, c', "d"]`` on commas outside quotes."""
    items: list[str] = []
    current: list[str] = []
    quote = ""
    for ch in body:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == ",":
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [_unquote(item) for item in items if item.strip()]


def parse_condarc(text: str) -> dict[str, Value | dict[str, object]]:
    """Top-level keys of a ``.condarc`` with their scalar or list-of-scalars values.

    Keys whose value is a nested mapping map to ``{}`` (their content is not read); an
    empty value with nothing under it maps to ``None``.
    """
    result: dict[str, Value | dict[str, object]] = {}
    key: str | None = None  # the top-level key whose block value follows
    for raw in text.splitlines():
        line = _strip_comment(raw).rstrip()
        stripped = line.strip()
        if not stripped or stripped in ("---", "..."):
            continue
        indent = len(line) - len(line.lstrip())
        is_item = stripped == "-" or stripped.startswith(("- ", "-\t"))
        if indent == 0 and not is_item:
            name, sep, value = stripped.partition(":")
            key = None
            if not sep or (value and value[0] not in " \t"):
                continue  # not a "key: value" line we understand
            name = _unquote(name)
            value = value.strip()
            if not value:
                result[name] = None
                key = name
            elif value.startswith("[") and value.endswith("]"):
                result[name] = _split_flow(value[1:-1])
            elif value.startswith("{"):
                result[name] = {}
            else:
                result[name] = _unquote(value)
        elif key is not None and is_item:
            current = result.get(key)
            items = current if isinstance(current, list) else []
            if isinstance(current, dict):
                continue  # a list inside a nested mapping: not ours
            items.append(_unquote(stripped[1:]))
            result[key] = items
        elif key is not None and result.get(key) is None:
            result[key] = {}  # an indented "sub: value": a nested mapping
    return result


def _in_folder(base: str) -> list[str]:
    """``.condarc``, ``condarc`` and ``condarc.d/`` in ``base`` (as os.path.join makes them)."""
    if sys.platform == "win32" or not base:
        join = os.path.join
        return [join(base, ".condarc"), join(base, "condarc"), join(base, "condarc.d") + os.sep]
    if not base.endswith("/"):
        base += "/"
    return [base + ".condarc", base + "condarc", base + "condarc.d/"]


def condarc_search_path(root_prefix: str | None, environ: Mapping[str, str]) -> list[str]:
    """Files and ``condarc.d`` folders conda reads, lowest priority first (conda's SEARCH_PATH).

    Folders end with the path separator; the caller reads their ``*.yml``/``*.yaml`` files.
    """
    home = environ.get("HOME") or os.path.expanduser("~")
    xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    bases: list[str] = list(SYSTEM_DIRS)
    if root_prefix:
        bases.append(root_prefix)
    bases += [os.path.join(xdg, "conda"), os.path.join(home, ".config", "conda")]
    bases.append(os.path.join(home, ".conda"))
    active = environ.get("CONDA_PREFIX")
    paths: list[str] = []
    for base in bases:
        paths += _in_folder(base)
    paths.append(os.path.join(home, ".condarc"))
    if active:
        paths += _in_folder(active)
    explicit = environ.get("CONDARC")
    if explicit:
        paths.append(explicit)
    seen: set[str] = set()
    unique = []
    for path in paths:
        if path not in seen:
            seen.add(path)
            unique.append(path)
    return unique
