"""A small Python-evaluating kernel on wrapper_kernel.Kernel, for jupyter_kernel_test.

It exercises every part of the base class a real kernel uses: captured stdout/stderr,
execute_result, display_data, clear_output, the pager payload, completion, inspection,
is_complete, history (tail/range/search), stdin (input()), interrupts and async methods,
and comms (``display(widget)`` of ipywidgets, through the base's comm manager).
Run as a script: ``python pykernel.py -f CONNECTION_FILE``.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import codeop
import fnmatch
import inspect
import time
from typing import Any

from wrapper_kernel import Kernel


class PyKernel(Kernel):
    implementation = "pykernel"
    implementation_version = "0.1"
    language = "python"
    language_version = "3"
    language_info = {"name": "python", "mimetype": "text/x-python", "file_extension": ".py"}
    banner = "A tiny Python kernel for tests"
    capture_output = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history: list[tuple[int, int, str, str]] = []
        self.ns: dict[str, Any] = {
            "__name__": "__main__",
            "display": self._display,
            "clear_output": self.clear_output,
            "kernel": self,
            "time": time,
            "asyncio": asyncio,
        }

    def _display(self, obj: Any) -> None:
        # A dict is a mime bundle; anything else by its rich repr (an ipywidgets widget: its
        # view), as IPython's display() does.
        self.display_object(obj)

    def do_execute(
        self, code, silent, store_history=True, user_expressions=None, allow_stdin=False
    ):
        stripped = code.strip()
        if stripped.endswith("?") and stripped[:-1].isidentifier():
            obj = self._lookup(stripped[:-1])
            self.page(inspect.getdoc(obj) or repr(obj))
            return {"status": "ok", "execution_count": self.execution_count}
        tree = ast.parse(code, "<cell>", "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, "<cell>", "exec"), self.ns)
        output = ""
        if last is not None:
            value = eval(compile(last, "<cell>", "eval"), self.ns)
            if asyncio.iscoroutine(value):
                value = asyncio.run(value)
            if value is not None:
                output = repr(value)
                if not silent:
                    self.execute_result({"text/plain": output})
        if store_history:
            self.history.append((1, self.execution_count, code, output))
        return {
            "status": "ok",
            "execution_count": self.execution_count,
            "payload": [],
            "user_expressions": {},
        }

    def _lookup(self, name: str) -> Any:
        if name in self.ns:
            return self.ns[name]
        return getattr(builtins, name)

    async def do_complete(self, code, cursor_pos):
        await asyncio.sleep(0)  # async handlers are run to completion by the base
        head = code[:cursor_pos]
        i = len(head)
        while i and (head[i - 1].isalnum() or head[i - 1] == "_"):
            i -= 1
        prefix = head[i:]
        names = set(self.ns) | set(dir(builtins))
        matches = sorted(n for n in names if n.startswith(prefix) and not n.startswith("__"))
        return {
            "status": "ok",
            "matches": matches,
            "cursor_start": i,
            "cursor_end": cursor_pos,
            "metadata": {},
        }

    def do_inspect(self, code, cursor_pos, detail_level=0):
        name = code[:cursor_pos].split()[-1] if code[:cursor_pos].split() else code
        try:
            obj = self._lookup(name)
        except AttributeError:
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}
        return {
            "status": "ok",
            "found": True,
            "data": {"text/plain": inspect.getdoc(obj) or repr(obj)},
            "metadata": {},
        }

    def do_is_complete(self, code):
        try:
            if codeop.compile_command(code, "<cell>", "single") is None:
                return {"status": "incomplete", "indent": "    "}
        except (SyntaxError, ValueError, OverflowError):
            try:  # "single" takes one statement; a multi-statement cell may still be fine
                compile(code, "<cell>", "exec")
            except (SyntaxError, ValueError, OverflowError):
                return {"status": "invalid"}
        return {"status": "complete"}

    def do_history(
        self,
        hist_access_type,
        output,
        raw,
        session=None,
        start=None,
        stop=None,
        n=None,
        pattern=None,
        unique=False,
    ):
        items = self.history
        if hist_access_type == "tail":
            items = items[-n:] if n else items
        elif hist_access_type == "range":
            items = [
                h for h in items if h[0] == session and (start or 0) <= h[1] < (stop or 1 << 62)
            ]
        elif hist_access_type == "search":
            items = [h for h in items if fnmatch.fnmatch(h[2], pattern or "*")]
            if unique:
                seen: dict[str, tuple[int, int, str, str]] = {}
                for h in items:
                    seen.pop(h[2], None)
                    seen[h[2]] = h
                items = list(seen.values())
            if n:
                items = items[-n:]
        if output:
            history = [(s, line, (inp, out)) for s, line, inp, out in items]
        else:
            history = [(s, line, inp) for s, line, inp, _ in items]
        return {"status": "ok", "history": history}


if __name__ == "__main__":
    PyKernel.launch_instance()
