"""The seed's plot kernel (IPython Cookbook, "graphing calculator"), corrected.

Each line ``y = f(x)`` of a cell is a function of ``x`` written with numpy names
(``y = sin(x) * exp(-x**2)``); the cell answers with one ``image/png`` plot of all of them
over ``x`` in [-5, 5] and a stdout line "Plotting N function(s)".

numpy and matplotlib are the optional extra ``wrapper-kernel[plot]``; they are imported on
the first execute, so the kernel starts fast and says what to install when they are missing.
Differences from the seed: stream text goes under ``text`` (the seed's ``data`` key is not in
the protocol), the PNG is plain base64 (the seed URL-quoted it, which no frontend decodes),
blank lines are skipped and a bad line is an error reply naming the line.

Run ``python -m wrapper_kernel.examples.plot install --user`` to make it a Jupyter kernel.
"""

from __future__ import annotations

import base64
import re
from io import BytesIO
from typing import Any

from wrapper_kernel import Kernel


class PlotDependencyError(ImportError):
    """numpy or matplotlib is missing."""


class PlotSyntaxError(SyntaxError):
    """A line is not of the form ``y = f(x)``."""


def _numpy() -> Any:
    try:
        import matplotlib
        import numpy
    except ImportError as e:
        raise PlotDependencyError(
            f"the plot kernel needs numpy and matplotlib ({e}); "
            "install them with: pip install 'wrapper-kernel[plot]'"
        ) from None
    del matplotlib  # Figure below renders with Agg itself: no pyplot, no GUI backend
    return numpy


def to_png(fig: Any) -> str:
    """Return a matplotlib figure as a base64-encoded PNG (what ``image/png`` carries)."""
    imgdata = BytesIO()
    fig.savefig(imgdata, format="png")
    return base64.b64encode(imgdata.getvalue()).decode("ascii")


def parse_functions(code: str) -> list[tuple[str, Any]]:
    """Compile each non-blank ``y = f(x)`` line; raise PlotSyntaxError naming a bad line."""
    functions = []
    for lineno, line in enumerate(code.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        _lhs, eq, rhs = line.partition("=")
        if not eq or not rhs.strip():
            raise PlotSyntaxError(f"line {lineno}: expected 'y = f(x)', got {line.strip()!r}")
        try:
            compiled = compile(rhs.strip(), f"<line {lineno}>", "eval")
        except SyntaxError as e:
            raise PlotSyntaxError(f"line {lineno}: {e.msg}: {rhs.strip()!r}") from None
        functions.append((line.strip(), compiled))
    return functions


class PlotKernel(Kernel):
    implementation = "Plot"
    implementation_version = "1.0"
    language = "python"  # will be used for syntax highlighting
    language_version = "3.11"
    language_info = {
        "name": "plotter",
        "mimetype": "text/plain",
        "file_extension": ".py",
        "codemirror_mode": "python",
        "pygments_lexer": "python",
    }
    banner = "Simple plotting: write y = f(x) with numpy functions, one per line"
    display_name = "Plotter"
    kernel_name = "plot"

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
    ) -> dict[str, Any]:
        functions = parse_functions(code)
        np = _numpy()
        from matplotlib.figure import Figure

        namespace = {n: getattr(np, n) for n in dir(np) if not n.startswith("_")}
        namespace["__builtins__"] = {}
        x = np.linspace(-5.0, 5.0, 200)
        fig = Figure(figsize=(6, 4), dpi=100)
        ax = fig.add_subplot(1, 1, 1)
        for _, compiled in functions:
            y = eval(compiled, namespace, {"x": x})
            ax.plot(x, np.broadcast_to(y, x.shape))
        ax.set_xlim(-5, 5)
        png = to_png(fig)

        if not silent:
            self.send_response(
                self.iopub_socket,
                "stream",
                {"name": "stdout", "text": f"Plotting {len(functions)} function(s)\n"},
            )
            content = {
                "data": {"image/png": png, "text/plain": f"<{len(functions)} function(s)>"},
                "metadata": {"image/png": {"width": 600, "height": 400}},
            }
            self.send_response(self.iopub_socket, "display_data", content)

        return {
            "status": "ok",
            "execution_count": self.execution_count,
            "payload": [],
            "user_expressions": {},
        }

    def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        """Complete numpy names (``si`` → ``sin``, ``sinc``, ``sinh``)."""
        head = code[:cursor_pos]
        m = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", head)
        prefix = m.group(0) if m else ""
        matches: list[str] = []
        if prefix:
            try:
                np = _numpy()
            except PlotDependencyError:
                np = None
            names = ["x", *dir(np)] if np is not None else ["x"]
            matches = sorted({n for n in names if n.startswith(prefix) and not n.startswith("_")})
        return {
            "status": "ok",
            "matches": matches,
            "cursor_start": cursor_pos - len(prefix),
            "cursor_end": cursor_pos,
            "metadata": {},
        }


if __name__ == "__main__":
    PlotKernel.launch_instance()
