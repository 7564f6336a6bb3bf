"""What a conda environment offers: its kernelspecs, or ipykernel as a Python kernel.

:class:`EnvKernels` (a base of the scan in :mod:`._discover`) reads an environment's
``share/jupyter/kernels`` (one parse per kernel.json, bare ``python`` in argv resolved to the
environment's interpreter) and, when it has none for Python, whether ipykernel is installed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kernel_mgmt.curve import dist_info_version, ipykernel_supports_curve

from ._environments import SEP, WIN, CondaEnv

if TYPE_CHECKING:  # pragma: no cover
    from ._cache import Watch

__all__ = ["EnvKernels", "python_path"]

_PYTHON_LANG = "python"
_KERNELS = SEP + os.path.join("share", "jupyter", "kernels")
_KERNEL_JSON = SEP + "kernel.json"
#: argv[0] meaning "a Python" (resolved to the environment's interpreter).
_BARE_PYTHON = re.compile(r"python(3(\.\d+)?)?")
_BARE_PYTHON_COMMON = frozenset(("python", "python3"))


def python_path(prefix: str) -> str:
    """The environment's Python interpreter."""
    if WIN:
        return os.path.join(prefix, "python.exe")
    # os.path.join(prefix, "bin", "python") without its (pure Python) cost.
    return prefix + ("bin/python" if prefix.endswith("/") else "/bin/python")


class EnvKernels:
    """The kernels-per-environment half of a discovery pass."""

    watch: Watch
    home: str
    kernelspec: Any
    parse: Callable[..., Any]
    name_ok: Callable[[str], Any]

    def warn(self, message: str) -> None:  # pragma: no cover - the scan's
        raise NotImplementedError

    def ipykernel_version(self, prefix: str) -> str | None:
        """ipykernel's version when installed (a conda package record, or the package in
        site-packages; "" when its version cannot be told), else None. Never runs Python."""
        watch = self.watch
        meta = watch.listdir(prefix + SEP + "conda-meta") or []
        python_version = None
        for entry in meta:
            if not entry.endswith(".json"):
                continue
            parts = entry[:-5].rsplit("-", 2)  # <name>-<version>-<build>.json
            if len(parts) != 3:
                continue
            if parts[0] == "ipykernel":
                return parts[1]
            if parts[0] == "python":
                python_version = ".".join(parts[1].split(".")[:2])
        if WIN:
            sites = [os.path.join(prefix, "Lib", "site-packages")]
        elif python_version:
            sites = [f"{prefix}/lib/python{python_version}/site-packages"]
        else:
            lib = prefix + "/lib"
            sites = [
                f"{lib}/{d}/site-packages"
                for d in watch.listdir(lib) or []
                if d.startswith("python3")
            ]
        for site in sites:
            # pip installing ipykernel changes this folder; while it is missing, its
            # creation is what would change the answer (no need to look inside).
            if watch.stat(site) is not None and watch.exists(
                os.path.join(site, "ipykernel", "__init__.py")
            ):
                # pip's record: the .dist-info folder name (the folder's listing is watched).
                return dist_info_version(watch.listdir(site) or (), "ipykernel") or ""
        return None

    def env_kernels(self, env: CondaEnv) -> list[tuple[str, dict[str, Any]]]:
        """``(kernel key, attributes)`` for each kernel type in ``env``.

        The kernelspec rules are the spec provider's (``kernel_mgmt.kernelspec``):
        lower-cased folder names ``[a-z0-9._-]``, the first folder of a name (sorted)
        wins even when its kernel.json is broken, folders without a kernel.json ignored.
        """
        watch = self.watch
        prefix = env.prefix
        kernels: list[tuple[str, dict[str, Any]]] = []
        kernels_dir = prefix + _KERNELS
        has_python = False
        seen: set[str] = set()
        # Its mtime (recorded by listdir): kernelspecs added or removed.
        entries = watch.listdir(kernels_dir)
        if entries:
            ks = self.kernelspec
            name_ok = self.name_ok
            parse = self.parse
            base = kernels_dir + SEP
            env_python = None
            for entry in entries:
                key = entry.lower()
                if key in seen:
                    continue
                resource_dir = base + entry
                path = resource_dir + _KERNEL_JSON
                try:
                    # Not a folder or no kernel.json: None (recorded as missing, so adding
                    # a kernel.json there is seen).
                    data: bytes | OSError | None = watch.read(path)
                except OSError as e:
                    data = e
                if data is None:
                    continue
                if not name_ok(key):
                    self.warn(
                        f"conda env {prefix}: skipping kernelspec {resource_dir}: "
                        f"invalid kernelspec folder name: {ks.NAME_RULE}"
                    )
                    continue
                seen.add(key)
                if isinstance(data, OSError):
                    self.warn(
                        f"conda env {prefix}: skipping invalid kernelspec "
                        f"{path}: cannot read: {data.strerror}"
                    )
                    continue
                try:
                    spec = parse(data, path)
                except ks.InvalidKernelSpec as e:
                    self.warn(f"conda env {prefix}: skipping invalid kernelspec {e}")
                    continue
                # kernel_mgmt.kernelspec.kernel_attributes(spec, resource_dir), done in place:
                # the spec was parsed for us alone (and is not kept), so no copy is needed
                # (the keys come out in the same order as from the copy).
                attrs = spec
                attrs["resource_dir"] = resource_dir
                if "display_name" not in attrs:
                    attrs["display_name"] = entry  # basename(resource_dir)
                language = attrs.setdefault("language", "")
                argv = attrs.setdefault("argv", [])
                attrs.setdefault("interrupt_mode", "signal")
                attrs.setdefault("env", {})
                attrs.setdefault("metadata", {})
                if "language_info" not in attrs:
                    attrs["language_info"] = {"name": language}
                # The argv list was parsed for us alone too: edit it in place.
                arg0 = argv[0]
                if arg0 in _BARE_PYTHON_COMMON or (
                    arg0[:6] == "python" and _BARE_PYTHON.fullmatch(arg0)
                ):
                    # "python" in an env means the env's python.
                    argv[0] = env_python or (env_python := python_path(prefix))
                if "{prefix}" in "\0".join(argv):
                    argv[:] = [a.replace("{prefix}", prefix) for a in argv]
                if not has_python:
                    has_python = str(language).lower() == _PYTHON_LANG
                kernels.append((key, attrs))
        ipykernel_version = None if has_python else self.ipykernel_version(prefix)
        if ipykernel_version is not None:
            key = "python3" if "python3" not in seen else "ipykernel"
            metadata: dict[str, Any] = {"debugger": True}
            if ipykernel_supports_curve(ipykernel_version):
                # What ipykernel >= 7.3 writes in its own kernelspec.
                metadata["supported_encryption"] = ["curve"]
            kernels.append(
                (
                    key,
                    {
                        "argv": [
                            python_path(prefix),
                            "-m",
                            "ipykernel_launcher",
                            "-f",
                            "{connection_file}",
                        ],
                        "display_name": "Python 3",
                        "language": _PYTHON_LANG,
                        "language_info": {"name": _PYTHON_LANG},
                        "interrupt_mode": "signal",
                        "env": {},
                        "metadata": metadata,
                    },
                )
            )
        return kernels

    def path_label(self, prefix: str) -> str:
        """``prefix`` for a display name, ``~`` for the home folder."""
        home = self.home.rstrip("/\\")
        if prefix.startswith(home + SEP):
            return "~" + prefix[len(home) :]
        return prefix

    def env_label(self, env: CondaEnv) -> str:
        """How display names say the environment: its conda name, else its path."""
        return env.name if env.named else self.path_label(env.prefix)
