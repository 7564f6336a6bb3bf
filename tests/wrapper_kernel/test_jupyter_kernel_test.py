"""jupyter_kernel_test's conformance suite against our kernels (real jupyter_client peers)."""

from __future__ import annotations

import jupyter_kernel_test as jkt
import pytest


@pytest.fixture(scope="module", autouse=True)
def _jupyter(jupyter_dirs):
    """Kernelspecs in a private JUPYTER_PATH before setUpClass starts the kernels."""
    return jupyter_dirs


class TestEchoKernel(jkt.KernelTests):
    """The shipped echo kernel, for what an echo kernel supports."""

    kernel_name = "wk-echo"
    language_name = "echo"
    file_extension = ".txt"
    code_hello_world = "hello, world"
    completion_samples = [{"text": "pri", "matches": []}]  # no completion: an empty list


class TestEchoKernelIopubWelcome(jkt.IopubWelcomeTests):
    kernel_name = "wk-echo"
    support_iopub_welcome = True


class TestSeedEchoKernel(jkt.KernelTests):
    """The seed's EchoKernel, verbatim but for its imports."""

    kernel_name = "wk-seed-echo"
    language_name = "no-op"  # the seed gives no language_info name: `language` stands in
    code_hello_world = "hello, world"


class TestPythonKernel(jkt.KernelTests):
    """A small Python-evaluating kernel on our base class: every test must run and pass."""

    kernel_name = "wk-py"
    language_name = "python"
    file_extension = ".py"
    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"
    completion_samples = [{"text": "zi", "matches": {"zip"}}]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n"]
    incomplete_code_samples = ["print('''hello", "def f(x):\n  x*1", "x = ("]
    invalid_code_samples = ["import = 7q", "1 2"]
    code_page_something = "print?"
    code_generate_error = "raise Exception('oops')"
    code_execute_result = [
        {"code": "1+2+3", "result": "6"},
        {"code": "[n*n for n in range(1, 4)]", "result": "[1, 4, 9]"},
    ]
    code_display_data = [
        {"code": "display({'text/html': '<b>hi</b>'})", "mime": "text/html"},
        {"code": "display({'image/png': 'iVBORw0KGgo='})", "mime": "image/png"},
    ]
    supported_history_operations = ("tail", "range", "search")
    code_history_pattern = "1?2*"
    code_inspect_sample = "zip"
    code_clear_output = "clear_output()"


class TestPythonKernelIopubWelcome(jkt.IopubWelcomeTests):
    kernel_name = "wk-py"
    support_iopub_welcome = True
