"""Shared by the REPL-kernel tests: the README's REPL kernels as files, and their kernelspecs.

The README's examples are extracted (so the docs stay true) into the test's private Jupyter
tree; every bash runs with a private HOME (no ~/.bashrc of this machine).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

README = Path(__file__).parents[2] / "packages" / "wrapper-kernel" / "README.md"


def readme_example(name: str) -> str:
    """The code block after ``<!-- readme-example: NAME -->`` in the package README."""
    pattern = rf"<!-- readme-example: {name} -->\n```python\n(.*?)```"
    m = re.search(pattern, README.read_text(), re.S)
    assert m, f"README example {name!r} not found"
    return m.group(1)


#: Environment for the bash kernels' tests: two variables to complete, a private HOME is
#: added by the fixture.
BASH_ENV = {"WK_COMPLETE_ALPHA": "1", "WK_COMPLETE_BETA": "2"}


def write_repl_kernelspecs(root: Path) -> dict[str, list[str]]:
    """Write the REPL kernels' kernelspecs under ``root`` (a jupyter_dirs tree); return the
    argv (before ``-f``) of each, by kernel name."""
    scripts = root / "repl-kernels"
    scripts.mkdir(exist_ok=True)
    argv = {"wk-bash": [sys.executable, "-m", "wrapper_kernel.examples.bash"]}
    for name, example in (("wk-readme-bash", "repl-bash"), ("wk-readme-pyrepl", "repl-python")):
        path = scripts / f"{example.replace('-', '_')}.py"
        path.write_text(readme_example(example))
        argv[name] = [sys.executable, str(path)]
    kernels = root / "share" / "jupyter" / "kernels"
    for name, cmd in argv.items():
        d = kernels / name
        d.mkdir(parents=True, exist_ok=True)
        spec = {
            "argv": [*cmd, "-f", "{connection_file}"],
            "display_name": name,
            "language": "bash" if "bash" in name else "python",
            "env": {**BASH_ENV, "HOME": str(root / "home")},
        }
        (d / "kernel.json").write_text(json.dumps(spec))
    (root / "home").mkdir(exist_ok=True)
    return argv
