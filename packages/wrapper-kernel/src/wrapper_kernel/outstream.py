"""``OutStream``: a text file whose writes become IOPub ``stream`` messages."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .kernelbase import Kernel

__all__ = ["OutStream"]


class OutStream(io.TextIOBase):
    """A text file whose writes become IOPub ``stream`` messages (``stdout`` or ``stderr``).

    Line-buffered: text is sent at each newline, on :meth:`flush`, and when the request ends,
    so ``print("a")`` is one message, not two. Redirect ``sys.stdout`` to one (or set
    :attr:`Kernel.capture_output`) to turn ``print`` in a Python-evaluating kernel into output.
    """

    def __init__(self, kernel: Kernel, name: str = "stdout") -> None:
        super().__init__()
        self._kernel = kernel
        self.name = name
        self._buffer: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            self._buffer.append(text)
            if "\n" in text:
                self.flush()
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            text = "".join(self._buffer)
            self._buffer.clear()
            self._kernel.send_stream(text, self.name)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def isatty(self) -> bool:
        return False
