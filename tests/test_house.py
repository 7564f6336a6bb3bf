"""Rules of the house for every package under ``packages/*/src``: small modules, no import circles.

* No module over 400 lines; at most two modules in the whole repository may reach 600, and
  only with the reason in their docstring (a docstring that says "over 400 lines" and why).
* No import circle inside a package. Imports are read with :mod:`ast`, so an import inside a
  function counts as much as one at the top (a function-level import that hides a circle is
  still a circle); only imports under ``if TYPE_CHECKING:`` are skipped (they never run).

The packages are found by globbing, so packages added later are covered without editing this
file. The checkers are also run on a small package built in a temporary folder, to show that
they do fail.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 400
HARD_LIMIT = 600
MAX_EXCEPTIONS = 2
#: The phrase an exceptional module's docstring must contain, followed by its reason.
EXCEPTION_PHRASE = "over 400 lines"


def package_dirs(root: Path) -> list[Path]:
    """Every import package of every distribution: ``packages/*/src/<name>/__init__.py``."""
    return sorted(p.parent for p in root.glob("packages/*/src/*/__init__.py"))


def modules_of(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``package`` (subpackages too)."""
    out: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _import_nodes(nodes: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except the body of ``if TYPE_CHECKING:``."""
    todo: list[ast.AST] = list(nodes)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of the same package (``known``) that ``module`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    here = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(tree.body):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base_parts = here.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub; `from pkg import name`
            # runs pkg/__init__.py.
            targets = []
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                targets.append(sub if sub in known else target)
        for target in targets:
            # `import a.b.c` runs a.b.c (its parents are already importing, or imported).
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    mods = modules_of(package)
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def _docstring(path: Path) -> str:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return ast.get_docstring(tree) or ""


def size_problems(root: Path) -> list[str]:
    """Modules over the limit, as messages (an empty list when the house is in order)."""
    problems: list[str] = []
    exceptions: list[str] = []
    for package in package_dirs(root):
        for name, path in modules_of(package).items():
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n <= LIMIT:
                continue
            where = f"{name} ({os.path.relpath(path, root)}) has {n} lines"
            if n > HARD_LIMIT:
                problems.append(f"{where}: over the hard limit of {HARD_LIMIT}; split it")
            elif EXCEPTION_PHRASE not in _docstring(path):
                problems.append(
                    f"{where}: over {LIMIT}; split it, or say in its docstring why it is "
                    f"{EXCEPTION_PHRASE!r}"
                )
            else:
                exceptions.append(where)
    if len(exceptions) > MAX_EXCEPTIONS:
        problems.append(
            f"{len(exceptions)} modules are over {LIMIT} lines, at most {MAX_EXCEPTIONS} may be: "
            + "; ".join(exceptions)
        )
    return problems


def circle_problems(root: Path) -> list[str]:
    problems = []
    for package in package_dirs(root):
        for component in circles(import_graph(package)):
            problems.append(f"import circle in {package.name}: " + " <-> ".join(component))
    return problems


def test_the_packages_are_found():
    names = {p.name for p in package_dirs(ROOT)}
    assert {"kernel_mgmt", "wrapper_kernel", "kernel_mgmt_provider_spec"} <= names, names


def test_no_module_over_the_limit():
    problems = size_problems(ROOT)
    assert not problems, "\n".join(problems)


def test_no_import_circle_inside_a_package():
    problems = circle_problems(ROOT)
    assert not problems, "\n".join(problems)


# -- the checkers fail where they must ---------------------------------------------------------


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    """A repository with one package holding each kind of violation, and some allowed imports."""
    pkg = tmp_path / "packages" / "demo" / "src" / "demo"
    _write(pkg / "__init__.py", "from .a import A\n")
    # a -> b at the top, b -> a inside a function: a circle hidden in a function.
    _write(pkg / "a.py", "from . import b\n\nA = 1\n")
    _write(pkg / "b.py", "def f():\n    from .a import A\n    return A\n")
    # c -> d only under TYPE_CHECKING, d -> c at the top: allowed.
    _write(
        pkg / "c.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import D\nC = 1\n",
    )
    _write(pkg / "d.py", "from demo.c import C\nD = C\n")
    # sub.e -> sub (its __init__) -> sub.e: a circle through a subpackage's __init__.
    _write(pkg / "sub" / "__init__.py", "from .e import E\n")
    _write(pkg / "sub" / "e.py", "import demo.sub\nE = 1\n")
    _write(pkg / "long.py", '"""Long."""\n' + "x = 1\n" * (LIMIT + 5))
    _write(pkg / "huge.py", '"""Huge, but over 400 lines: a reason."""\n' + "x = 1\n" * 700)
    for i in range(MAX_EXCEPTIONS + 1):
        _write(pkg / f"ok{i}.py", '"""A module over 400 lines: a reason."""\n' + "x = 1\n" * 450)
    return tmp_path


def test_the_circle_check_finds_hidden_circles_and_skips_type_checking(bad_tree: Path):
    problems = circle_problems(bad_tree)
    assert problems == [
        "import circle in demo: demo.a <-> demo.b",
        "import circle in demo: demo.sub <-> demo.sub.e",
    ], problems


def test_the_size_check_finds_long_modules_and_too_many_exceptions(bad_tree: Path):
    problems = size_problems(bad_tree)
    assert any(p.startswith("demo.long ") and "split it, or say" in p for p in problems), problems
    assert any(p.startswith("demo.huge ") and "hard limit" in p for p in problems), problems
    assert any(f"{MAX_EXCEPTIONS + 1} modules are over" in p for p in problems), problems
    assert len(problems) == 3, problems
