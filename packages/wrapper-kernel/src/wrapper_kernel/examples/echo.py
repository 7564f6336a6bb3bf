"""The seed's echo kernel: sends every cell's code back as stdout.

Run ``python -m wrapper_kernel.examples.echo install --user`` to make it a Jupyter kernel.
"""

from __future__ import annotations

from typing import Any

from wrapper_kernel import Kernel


class EchoKernel(Kernel):
    implementation = "Echo"
    implementation_version = "1.0"
    language = "no-op"
    language_version = "0.1"
    language_info = {"name": "echo", "mimetype": "text/plain", "file_extension": ".txt"}
    banner = "Echo kernel - as useful as a parrot"
    display_name = "Echo"
    kernel_name = "echo"

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
    ) -> dict[str, Any]:
        if not silent:
            stream_content = {"name": "stdout", "text": code}
            self.send_response(self.iopub_socket, "stream", stream_content)

        return {
            "status": "ok",
            # The base class increments the execution count
            "execution_count": self.execution_count,
            "payload": [],
            "user_expressions": {},
        }


if __name__ == "__main__":
    EchoKernel.launch_instance()
