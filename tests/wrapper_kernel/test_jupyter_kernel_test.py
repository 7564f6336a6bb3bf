"""jupyter_kernel_test's conformance suite against our kernels (real jupyter_client peers).

The echo kernels run the tests an echo kernel can pass; the others are skipped with a reason
naming what echo lacks. The Python-evaluating test kernel must run *every* test: there a skip,
even of one ``subTest`` (history's tail/range/search), is recorded as a failure.
"""

from __future__ import annotations

import sys
import unittest
from typing import Any

import jupyter_kernel_test as jkt
import pytest


@pytest.fixture(scope="module", autouse=True)
def _jupyter(jupyter_dirs):
    """Kernelspecs in a private JUPYTER_PATH before setUpClass starts the kernels."""
    return jupyter_dirs


#: What an echo kernel cannot do, by jupyter_kernel_test test name.
ECHO_LACKS = {
    "test_execute_stderr": "writes nothing to stderr",
    "test_is_complete": "has no is_complete (it answers 'unknown')",
    "test_pager": "has no pager",
    "test_error": "never raises an error",
    "test_execute_result": "has no execute_result",
    "test_display_data": "has no display_data",
    "test_history": "keeps no history",
    "test_inspect": "has no inspection",
    "test_clear_output": "never clears output",
}


def echo_kernel_tests(cls: type) -> type:
    """Skip, with a reason, the tests for what an echo kernel does not do."""
    for name, lacks in ECHO_LACKS.items():
        reason = f"the echo kernel {lacks}; TestPythonKernel runs {name}"
        setattr(cls, name, unittest.skip(reason)(lambda self: None))
    return cls


class _SkipIsFailure:
    """A unittest result proxy that records a skip (of the test or a subTest) as a failure."""

    def __init__(self, result: Any, case: unittest.TestCase) -> None:
        self._result = result
        self._case = case

    def addSkip(self, test: Any, reason: str) -> None:
        try:
            raise AssertionError(
                f"{type(self._case).__name__} must run every jupyter_kernel_test test, "
                f"but {test} was skipped: {reason}"
            )
        except AssertionError:
            self._result.addFailure(self._case, sys.exc_info())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)


class NoSkips:
    """Mixin for a ``unittest.TestCase``: no jupyter_kernel_test test may be skipped."""

    def run(self, result: Any = None) -> Any:
        if result is None:
            return super().run(result)  # type: ignore[misc]
        return super().run(_SkipIsFailure(result, self))  # type: ignore[misc]


@echo_kernel_tests
class TestEchoKernel(jkt.KernelTests):
    """The shipped echo kernel, for what an echo kernel supports."""

    kernel_name = "wk-echo"
    language_name = "echo"
    file_extension = ".txt"
    code_hello_world = "hello, world"
    completion_samples = [{"text": "pri", "matches": []}]  # no completion: an empty list


class TestEchoKernelIopubWelcome(NoSkips, jkt.IopubWelcomeTests):
    kernel_name = "wk-echo"
    support_iopub_welcome = True


@echo_kernel_tests
class TestSeedEchoKernel(jkt.KernelTests):
    """The seed's EchoKernel, verbatim but for its imports."""

    kernel_name = "wk-seed-echo"
    language_name = "no-op"  # the seed gives no language_info name: `language` stands in
    code_hello_world = "hello, world"
    completion_samples = [{"text": "pri", "matches": []}]  # the base's default: no matches


class TestPythonKernel(NoSkips, jkt.KernelTests):
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


class TestPythonKernelIopubWelcome(NoSkips, jkt.IopubWelcomeTests):
    kernel_name = "wk-py"
    support_iopub_welcome = True


def test_python_kernel_runs_every_conformance_test():
    """The conformance areas the issue names all exist as tests the Python kernel runs."""
    names = {n for n in dir(TestPythonKernel) if n.startswith("test_")}
    areas = [
        "stdout",
        "stderr",
        "completion",
        "is_complete",
        "pager",
        "error",
        "execute_result",
        "display_data",
        "history",
        "inspect",
        "clear_output",
        "kernel_info",
    ]
    missing = [a for a in areas if not any(n.endswith(a) for n in names)]
    assert not missing, f"jupyter_kernel_test has no test for {missing}"
    assert "test_recv_iopub_welcome_msg" in dir(TestPythonKernelIopubWelcome)
