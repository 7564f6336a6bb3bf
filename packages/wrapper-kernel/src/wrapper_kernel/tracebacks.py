"""Error replies whose tracebacks show the author's code, not the kernel's machinery.

An exception out of a ``do_*`` method becomes an ``error`` reply (messaging spec, "Request
reply": ``ename``, ``evalue``, ``traceback``); its traceback is cut to the author's frames, as
plain Python would show them. ``traceback`` is imported on the first error only.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["error_content", "format_exception"]

#: This package's own modules (the dispatcher, the server, the SIGINT handler); the shipped
#: examples live in a subfolder and count as author code.
_HERE = os.path.dirname(os.path.abspath(__file__))
#: The standard library's folder: asyncio frames that run an ``async def`` handler are ours.
_STDLIB = os.path.dirname(os.path.abspath(os.__file__))
_LOOP_FILES = (os.path.join(_STDLIB, "asyncio") + os.sep, os.path.join(_STDLIB, "selectors.py"))


def _is_machinery(filename: str) -> bool:
    return os.path.dirname(os.path.abspath(filename)) == _HERE


def _author_frames(stack: list[Any]) -> list[Any]:
    """The frames of ``stack`` that show the author's code, in order.

    Dropped: the leading frames of our dispatcher (and the asyncio loop running an
    ``async def`` handler) that called the author's method, and everything from the first
    frame of our machinery that the author's code called onwards: ``raw_input``/``input()``
    waiting on stdin, the SIGINT handler that raised ``KeyboardInterrupt``, ``send_response``.
    The traceback then ends at the author's line, as it would in plain Python.
    """
    i = 0
    while i < len(stack) and (
        _is_machinery(stack[i].filename) or stack[i].filename.startswith(_LOOP_FILES)
    ):
        i += 1
    kept = []
    for frame in stack[i:]:
        if _is_machinery(frame.filename):
            break
        kept.append(frame)
    return kept


def format_exception(exc: BaseException) -> list[str]:
    """Traceback lines for an ``error`` message, showing the author's frames only.

    Chained exceptions (``__cause__``, ``__context__``) are trimmed the same way.
    """
    import traceback

    te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    todo, seen = [te], set()
    while todo:
        t = todo.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        t.stack = traceback.StackSummary.from_list(_author_frames(list(t.stack)))
        todo.extend(x for x in (t.__cause__, t.__context__) if x is not None)
        todo.extend(getattr(t, "exceptions", None) or ())  # ExceptionGroup members
    return [line.rstrip("\n") for line in te.format() if line]


def error_content(exc: BaseException) -> dict[str, Any]:
    """The content of an ``error`` reply (and IOPub ``error``) for ``exc``."""
    return {
        "status": "error",
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": format_exception(exc),
    }
