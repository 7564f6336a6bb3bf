"""An object's mime bundle, by the rich-display conventions IPython established.

``_repr_mimebundle_(include=None, exclude=None)`` first (ipywidgets' widgets answer with
``application/vnd.jupyter.widget-view+json``, pandas with HTML), then the single-type methods
(``_repr_html_``, ``_repr_png_``, ...), and ``text/plain`` from ``repr()``. Any of them may
return ``(data, metadata)``. Binary images become base64 text, as the protocol carries them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

__all__ = ["mime_bundle"]

_SINGLE = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
    ("_repr_javascript_", "application/javascript"),
    ("_repr_pdf_", "application/pdf"),
)
_BINARY = {"image/png", "image/jpeg", "application/pdf"}


def _split(result: Any) -> tuple[Any, Any]:
    if isinstance(result, tuple) and len(result) == 2:
        return result
    return result, None


def mime_bundle(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(data, metadata)`` for ``obj`` (a dict passes through as a ready bundle)."""
    if isinstance(obj, Mapping) and not hasattr(obj, "_repr_mimebundle_"):
        return dict(obj), {}
    data: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    method = getattr(obj, "_repr_mimebundle_", None)
    if callable(method) and not isinstance(obj, type):
        got, meta = _split(method(include=None, exclude=None))
        if isinstance(got, Mapping):
            data.update(got)
        if isinstance(meta, Mapping):
            metadata.update(meta)
    for name, mime in _SINGLE:
        method = getattr(obj, name, None)
        if mime in data or not callable(method) or isinstance(obj, type):
            continue
        value, meta = _split(method())
        if value is None:
            continue
        if mime in _BINARY and isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        data[mime] = value
        if isinstance(meta, Mapping):
            metadata[mime] = dict(meta)
    data.setdefault("text/plain", repr(obj))
    return data, metadata
