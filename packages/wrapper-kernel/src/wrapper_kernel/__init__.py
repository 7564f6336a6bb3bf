"""A small, fast base class for writing Jupyter kernels in Python, without IPython.

::

    from wrapper_kernel import Kernel

    class EchoKernel(Kernel):
        implementation = "Echo"
        language = "no-op"

        def do_execute(self, code, silent, store_history=True, user_expressions=None,
                       allow_stdin=False):
            if not silent:
                self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": code})
            return {"status": "ok", "execution_count": self.execution_count,
                    "payload": [], "user_expressions": {}}

    if __name__ == "__main__":
        EchoKernel.launch_instance()   # -f CONNECTION_FILE, or: install [--user]
"""

from __future__ import annotations

from ._version import __version__
from .kernelapp import IPKernelApp, KernelApp
from .kernelbase import Kernel, OutStream, StdinNotImplementedError

__all__ = [
    "IPKernelApp",
    "Kernel",
    "KernelApp",
    "OutStream",
    "StdinNotImplementedError",
    "__version__",
]
