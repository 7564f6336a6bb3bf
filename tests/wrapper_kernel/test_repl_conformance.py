"""jupyter_kernel_test on the REPL kernels: the shipped bash kernel and the README's two
(bash in 20 lines, ``python3 -i``), each a real kernel started by jupyter_client.

What a terminal-driven kernel cannot do is skipped with the reason: a pseudo-terminal has one
output, so stderr arrives as stdout; and none of them has a pager, history or execute_result.
"""

from __future__ import annotations

import unittest

import jupyter_kernel_test as jkt
import pytest

from .repl_helpers import write_repl_kernelspecs


@pytest.fixture(scope="module", autouse=True)
def _jupyter(jupyter_dirs):
    """Kernelspecs in the private JUPYTER_PATH before setUpClass starts the kernels."""
    write_repl_kernelspecs(jupyter_dirs)
    return jupyter_dirs


def lacks(**reasons: str):
    """Skip the named jupyter_kernel_test tests, each with its reason."""

    def wrap(cls: type) -> type:
        for name, why in reasons.items():
            setattr(cls, name, unittest.skip(why)(lambda self: None))
        return cls

    return wrap


TERMINAL = dict(
    test_execute_stderr="a pseudo-terminal has one output: stderr arrives as stdout",
    test_pager="REPL kernels have no pager",
    test_history="REPL kernels keep no history for the frontend",
    test_execute_result="a REPL prints its values: they arrive as stdout",
    test_display_data="covered by test_repl.py (bash's display helper)",
    test_clear_output="a REPL cannot clear output",
)


@lacks(**TERMINAL)
class TestBashKernel(jkt.KernelTests):
    """wrapper_kernel.examples.bash: hello world, completion, is_complete, error, inspect."""

    kernel_name = "wk-bash"
    language_name = "bash"
    file_extension = ".sh"
    code_hello_world = "echo 'hello, world'"
    completion_samples = [
        {"text": "$WK_COMPLETE_", "matches": {"$WK_COMPLETE_ALPHA", "$WK_COMPLETE_BETA"}},
        {"text": "ech"},  # no "matches": validated only (see test_completion_of_a_command)
    ]
    complete_code_samples = ["echo hi", "for i in 1 2; do echo $i; done", "x=1\necho $x"]
    incomplete_code_samples = ["for i in 1 2; do", "echo 'abc", "if true; then", "echo a \\"]
    invalid_code_samples = ["fi", "done", "echo )"]
    code_generate_error = "false"
    code_inspect_sample = "echo"

    def test_completion_of_a_command(self) -> None:
        """``ech`` completes to ``echo`` (among whatever else this machine has)."""
        self.flush_channels()
        msg_id = self.kc.complete("ech")
        reply = self.get_non_kernel_info_reply(timeout=10)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert "echo" in reply["content"]["matches"]
        assert reply["content"]["cursor_start"] == 0


@lacks(**TERMINAL, test_inspect="the 20-line README kernel has no inspection")
class TestReadmeBashKernel(jkt.KernelTests):
    """The README's 20-line bash kernel."""

    kernel_name = "wk-readme-bash"
    language_name = "bash"
    file_extension = ".sh"
    code_hello_world = "echo 'hello, world'"
    completion_samples = [{"text": "ech", "matches": []}]  # no do_complete: the default
    code_generate_error = "ls /no/such/folder/here 2>/dev/null"


@lacks(**TERMINAL, test_inspect="the README's python3 -i kernel has no inspection")
class TestReadmePythonReplKernel(jkt.KernelTests):
    """The README's ``python3 -i`` kernel: tracebacks as error replies, is_complete."""

    kernel_name = "wk-readme-pyrepl"
    language_name = "python"
    file_extension = ".py"
    code_hello_world = "print('hello, world')"
    completion_samples = [{"text": "pri", "matches": []}]  # no do_complete: the default
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n"]
    incomplete_code_samples = ["print('''hello", "def f(x):\n  x*1", "x = ("]
    invalid_code_samples = ["import = 7q", "1 2"]
    code_generate_error = "raise Exception('oops')"
