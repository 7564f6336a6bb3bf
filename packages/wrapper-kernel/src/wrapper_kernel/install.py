"""``python -m mykernel install``: write a kernelspec that starts this kernel.

The kernelspec's ``argv`` runs the same module with this interpreter (``sys.executable``), so
the kernel finds the packages it was installed with, whichever environment a frontend runs in.
A module that this interpreter finds only thanks to the current folder (``mykernel.py``
beside you, not pip-installed) gets that folder on ``PYTHONPATH`` in the kernelspec's
``env``: frontends start kernels in other folders, where ``-m mykernel`` would not be found.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from typing import Any

from .kernelbase import Kernel

__all__ = ["install", "kernel_spec", "main"]

USAGE = """\
usage: python -m MODULE install [--user | --sys-prefix | --prefix PREFIX]
                                [--name NAME] [--display-name DISPLAY_NAME]

Install the kernelspec for this kernel. Without --user/--sys-prefix/--prefix it goes to
the system-wide Jupyter directory (may need root)."""


def _main_module() -> tuple[str | None, str | None]:
    """(module name, script path) of the program being run, for the kernelspec's argv."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        name = spec.name
        if name.endswith(".__main__"):
            name = name[: -len(".__main__")]
        return name, None
    path = getattr(main, "__file__", None)
    return None, os.path.abspath(path) if path else None


def _launch_target(kernel_class: type[Kernel]) -> tuple[str | None, str | None]:
    """(module, script) whose ``__main__`` starts ``kernel_class``.

    The running program when it defines the class (``python -m mykernel install``, or a
    script) or is the package holding it (``mykernel/__main__.py``); otherwise, e.g. when
    ``install()`` is called from a notebook or a setup script, the class's own module.
    """
    module, script = _main_module()
    owner = kernel_class.__module__
    if owner == "__main__":
        if module or script:
            return module, script
    elif module and (owner == module or owner.startswith(module + ".")):
        return module, None
    return owner, None


def _is_local(entry: str, cwd: str, env_paths: set[str]) -> bool:
    """True for ``sys.path`` entries a frontend's kernel would not have: the current folder
    (``''``, relative paths, cwd itself) and this shell's ``PYTHONPATH``."""
    if not entry or not os.path.isabs(entry):
        return True
    real = os.path.realpath(entry)
    return real == cwd or real in env_paths


def _module_folder(spec: Any) -> str | None:
    """The ``sys.path`` folder a top-level module's spec was found in."""
    locations = list(spec.submodule_search_locations or ())
    if locations:  # a package: its folder's parent
        return os.path.dirname(os.path.abspath(locations[0]))
    if spec.origin and spec.has_location:
        return os.path.dirname(os.path.abspath(spec.origin))
    return None


def local_module_folder(module: str) -> str | None:
    """The folder to put on the kernel's ``PYTHONPATH`` so that ``-m module`` works anywhere.

    None when this interpreter imports ``module`` from any working directory (it is
    installed, or on a ``.pth`` path); otherwise the folder it is found in now (usually the
    current one). Cheap: only finds the top-level module's file, imports nothing.
    """
    import importlib.machinery
    import importlib.util

    top = module.partition(".")[0]
    cwd = os.path.realpath(os.getcwd())
    env_paths = {
        os.path.realpath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    }
    neutral = [p for p in sys.path if not _is_local(p, cwd, env_paths)]
    for finder in sys.meta_path:
        try:
            if finder is importlib.machinery.PathFinder:
                spec = importlib.machinery.PathFinder.find_spec(top, neutral)
            else:  # editable-install finders and the like; they do not read sys.path
                find = getattr(finder, "find_spec", None)
                spec = find(top, None) if find is not None else None
        except Exception:  # a broken third-party finder must not break install
            continue
        if spec is None:
            continue
        folder = _module_folder(spec)
        if folder is None or not _is_local(folder, cwd, env_paths):
            return None  # importable without the current folder
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    return _module_folder(spec) if spec is not None else None


def default_kernel_name(kernel_class: type[Kernel], module: str | None = None) -> str:
    """``kernel_class.kernel_name``, else the module's last component, made a valid name."""
    if kernel_class.kernel_name:
        return kernel_class.kernel_name
    base = (module or kernel_class.__module__ or kernel_class.__name__).rsplit(".", 1)[-1]
    if base in ("__main__", ""):
        base = kernel_class.__name__
    name = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-")
    return name or "kernel"


def kernel_spec(
    kernel_class: type[Kernel],
    *,
    module: str | None = None,
    script: str | None = None,
    display_name: str | None = None,
) -> dict[str, Any]:
    """The kernel.json content that starts ``kernel_class`` with this interpreter."""
    if module is None and script is None:
        module, script = _launch_target(kernel_class)
    launch = ["-m", module] if module else [script]
    spec: dict[str, Any] = {
        "argv": [sys.executable, *launch, "-f", "{connection_file}"],
        "display_name": display_name or kernel_class.display_name or kernel_class.implementation,
        "language": kernel_class.language or "text",
        "interrupt_mode": kernel_class.interrupt_mode,
        # Every wrapper kernel is a CURVE server when its connection file carries keys.
        "metadata": {"debugger": False, "supported_encryption": ["curve"]},
    }
    folder = local_module_folder(module) if module else None
    if folder:
        # Prepended; ${PYTHONPATH} keeps the launching environment's own entries
        # (jupyter_client and kernel_mgmt both substitute ${VAR} in kernelspec env values).
        spec["env"] = {"PYTHONPATH": folder + os.pathsep + "${PYTHONPATH}"}
    return spec


def install(
    kernel_class: type[Kernel],
    *,
    user: bool = False,
    prefix: str | None = None,
    name: str | None = None,
    display_name: str | None = None,
    module: str | None = None,
    script: str | None = None,
) -> str:
    """Install the kernelspec for ``kernel_class``; returns the installed folder."""
    from kernel_mgmt.kernelspec import install_kernel_spec, write_kernel_spec

    if module is None and script is None:
        module, script = _launch_target(kernel_class)
    name = name or default_kernel_name(kernel_class, module)
    spec = kernel_spec(kernel_class, module=module, script=script, display_name=display_name)
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, name)
        write_kernel_spec(source, spec)
        return install_kernel_spec(source, name, user=user, prefix=prefix, replace=True)


def main(kernel_class: type[Kernel], argv: list[str] | None = None) -> int:
    """The ``install`` command line; returns the exit status."""
    args = list(sys.argv[2:] if argv is None else argv)
    opts: dict[str, Any] = {"user": False, "prefix": None, "name": None, "display_name": None}
    modes: set[str] = set()  # where to install: at most one of them
    i = 0
    try:
        while i < len(args):
            arg, eq, value = args[i].partition("=")
            if arg in ("-h", "--help"):
                print(USAGE)
                return 0
            if arg in ("--user", "--sys-prefix", "--prefix"):
                modes.add(arg)
            if arg == "--user":
                opts["user"] = True
            elif arg == "--sys-prefix":
                opts["prefix"] = sys.prefix
            elif arg in ("--prefix", "--name", "--display-name"):
                if not eq:
                    i += 1
                    if i >= len(args):
                        raise ValueError(f"{arg} needs a value")
                    value = args[i]
                if not value:  # `--prefix=` must not fall back to the system directory
                    raise ValueError(f"{arg} needs a value")
                opts[arg[2:].replace("-", "_")] = value
            else:
                raise ValueError(f"unknown option {args[i]!r}")
            i += 1
        if len(modes) > 1:
            raise ValueError("give one of --user, --sys-prefix and --prefix")
    except ValueError as e:
        print(f"error: {e}\n{USAGE}", file=sys.stderr)
        return 2
    try:
        path = install(kernel_class, **opts)
    except (OSError, ValueError) as e:
        where = "--user" if opts["user"] else opts["prefix"] or "the system directory"
        print(
            f"error: could not install the kernelspec into {where}: {e}\n"
            "Try --user (your home directory) or --sys-prefix (this environment).",
            file=sys.stderr,
        )
        return 1
    print(f"Installed kernelspec {os.path.basename(path)} in {path}")
    env = _installed_env(path)
    if "PYTHONPATH" in env:
        folder = env["PYTHONPATH"].split(os.pathsep, 1)[0]
        print(
            f"Note: this Python finds the kernel's module only in {folder} (the current "
            "folder or PYTHONPATH; it is not installed), so the kernelspec puts that folder "
            "on PYTHONPATH: the kernel starts from any folder. Moving or deleting the folder "
            "breaks the kernel; pip-install the module and run install again to drop this."
        )
    return 0


def _installed_env(path: str) -> dict[str, str]:
    import json

    try:
        with open(os.path.join(path, "kernel.json"), encoding="utf-8") as f:
            env = json.load(f).get("env") or {}
    except (OSError, ValueError):
        return {}
    return env if isinstance(env, dict) else {}
