"""One line to the kernel's stderr, for what the kernel cannot tell a client.

Every layer of the kernel (dispatch, sockets, start-up) reports this way; ``logging`` is not
imported because it costs start-up time.
"""

from __future__ import annotations

import sys

__all__ = ["warn"]


def warn(message: str) -> None:
    """Log to the kernel's stderr without importing ``logging`` (it costs start-up time)."""
    # sys.__stderr__: the process's stderr even while capture_output redirects sys.stderr.
    stream = sys.__stderr__ or sys.stderr
    try:
        stream.write(f"[wrapper_kernel] {message}\n")
        stream.flush()
    except (OSError, ValueError, AttributeError):  # closed or missing stderr: nothing to do
        pass
