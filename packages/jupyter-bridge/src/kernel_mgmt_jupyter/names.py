"""Jupyter kernel names for kernel_mgmt type ids, and back.

Jupyter names a kernel with one word that its URLs accept (``[\\w.\\-%]+``, no ``/``), that
tools store in notebooks (``metadata.kernelspec.name``) and that ``kernel-mgmt-jupyter sync``
uses as a kernelspec folder name (``[a-z0-9._-]``, compared lower-cased). The scheme:

- ``spec/NAME`` is ``NAME``: every existing notebook (``python3``) opens as before.
- ``PROVIDER/KERNEL`` is ``PROVIDER__KERNEL`` (two underscores), each part escaped: the
  characters ``a-z 0-9 . -`` stand for themselves, every other byte of the part's UTF-8
  (``_`` included, upper-case letters too) is ``_`` plus two lower-case hex digits. A part
  therefore never holds ``__`` (an escape's ``_`` is always followed by a hex digit), so the
  first ``__`` is the separator and the mapping is reversible and collision-free between
  providers: ``conda/ml-python3`` is ``conda__ml-python3``, ``pyimport/kernel`` is
  ``pyimport__kernel``, ``x/My_K`` is ``x__my_5fk``... (``_4d`` for the ``M``).
- Only a kernelspec folder whose own name holds ``__`` could look like another provider's
  kernel; the spec manager keeps the folder's name and gives the other type its name plus
  ``-`` and 6 hex digits of the sha1 of its type id (stable, and reported).

The conda provider's kernels also answer to nb_conda_kernels' names (see :func:`conda_aliases`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "SEPARATOR",
    "conda_aliases",
    "conda_display_name",
    "decode_part",
    "encode_part",
    "fallback_name",
    "jupyter_name",
    "type_id_for",
]

SEPARATOR = "__"
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_ESCAPE = re.compile(r"_([0-9a-f]{2})")
_HEX = frozenset("0123456789abcdef")


def encode_part(part: str) -> str:
    """Escape one part (a provider id or a kernel name) into ``[a-z0-9._-]``."""
    if all(c in _PLAIN for c in part):
        return part  # the usual case: nothing to escape
    out = []
    for char in part:
        if char in _PLAIN:
            out.append(char)
        else:
            out.extend(f"_{b:02x}" for b in char.encode("utf-8"))
    return "".join(out)


def decode_part(part: str) -> str:
    """The inverse of :func:`encode_part`.

    :raises ValueError: for text :func:`encode_part` cannot produce.
    """
    if "_" not in part:
        if not all(c in _PLAIN for c in part):
            raise ValueError(f"{part!r} is not an encoded kernel name part")
        return part
    data = bytearray()
    i = 0
    while i < len(part):
        char = part[i]
        if char == "_":
            code = part[i + 1 : i + 3]
            if len(code) != 2 or not all(c in _HEX for c in code):
                raise ValueError(f"{part!r}: '_' must be followed by two hex digits")
            data.append(int(code, 16))
            i += 3
        elif char in _PLAIN:
            data.append(ord(char))
            i += 1
        else:
            raise ValueError(f"{part!r} is not an encoded kernel name part")
    return data.decode("utf-8")


def jupyter_name(type_id: str) -> str:
    """The Jupyter kernel name of kernel type ``type_id`` (``"provider/name"``)."""
    provider, sep, name = type_id.partition("/")
    if not sep or not provider or not name:
        raise ValueError(f"kernel type id {type_id!r} is not '<provider>/<name>'")
    if provider == "spec":
        return name.lower()  # kernelspec folder names are lower-cased, as jupyter_client does
    return encode_part(provider) + SEPARATOR + encode_part(name)


def type_id_for(name: str) -> str:
    """The kernel type id a Jupyter name stands for (the inverse of :func:`jupyter_name`).

    Names are case-insensitive (jupyter_client lower-cases them). A name without ``__`` is a
    kernelspec folder: ``spec/<name>``.

    :raises ValueError: for a name no kernel type can have.
    """
    folded = name.lower()
    if not folded or "/" in folded:
        raise ValueError(f"{name!r} is not a Jupyter kernel name")
    provider, sep, kernel = folded.partition(SEPARATOR)
    if not sep:
        return f"spec/{folded}"
    if not provider or not kernel:
        raise ValueError(
            f"{name!r}: '{SEPARATOR}' must have a provider id before it and a name after"
        )
    return f"{decode_part(provider)}/{decode_part(kernel)}"


def fallback_name(type_id: str) -> str:
    """The name a type gets when a kernelspec folder already has its :func:`jupyter_name`."""
    digest = hashlib.sha1(type_id.encode("utf-8")).hexdigest()[:6]
    return f"{jupyter_name(type_id)}-{digest}"


# -- nb_conda_kernels compatibility ----------------------------------------------------------

#: nb_conda_kernels shortens these kernelspec folder names in its kernel names.
_NB_CONDA_SHORT = {"python2": "py", "python3": "py", "ir": "r"}
_NB_CONDA_CLEAN = re.compile(r"[^a-zA-Z0-9._\-]")
_CONDA_SUFFIX = re.compile(r" \(conda: (?P<label>.+)\)$")


def _nb_conda_env_names(conda: Mapping[str, Any]) -> list[str]:
    """The environment names nb_conda_kernels gives this environment (usually one)."""
    prefix = str(conda.get("env_prefix") or "")
    if conda.get("is_base"):
        return ["base", "root"]  # nb_conda_kernels 2.x says base; 1.x and older notebooks root
    if not prefix:
        return []
    prefix = prefix.rstrip("/" + os.sep)
    parent, name = os.path.split(prefix)
    names = [name]
    root = conda.get("root_prefix")
    default_envs = os.path.join(str(root), "envs") if root else None
    if os.path.basename(parent) == "envs" and parent != default_envs:
        # nb_conda_kernels: an env in another project's envs folder is "<project>-<env>".
        names.insert(0, f"{os.path.basename(os.path.dirname(parent))}-{name}")
    return names


def conda_aliases(attributes: Mapping[str, Any]) -> list[str]:
    """nb_conda_kernels' names for a conda provider kernel: ``conda-env-<env>-<kernel>``.

    The root environment's kernels are ``conda-base-<kernel>`` and ``conda-root-<kernel>``
    (nb_conda_kernels' older name, e.g. ``conda-root-py``); ``python2``/``python3`` become
    ``py`` and ``ir`` becomes ``r``, as nb_conda_kernels names them. Lower-cased: Jupyter
    compares kernel names case-insensitively.
    """
    metadata = attributes.get("metadata") or {}
    conda = metadata.get("conda") if isinstance(metadata, Mapping) else None
    if not isinstance(conda, Mapping):
        return []
    kernel = conda.get("kernelspec") or "python3"  # no kernelspec: the ipykernel-detected one
    kernel = _NB_CONDA_SHORT.get(str(kernel), str(kernel))
    aliases = []
    for env in _nb_conda_env_names(conda):
        middle = "" if conda.get("is_base") else "env-"
        alias = _NB_CONDA_CLEAN.sub("_", f"conda-{middle}{env}-{kernel}").lower()
        if alias not in aliases:
            aliases.append(alias)
    return aliases


def conda_display_name(display_name: str, fmt: str = "{display_name} [conda env:{env}]") -> str:
    """Turn the conda provider's ``Python 3 (conda: ml)`` into ``Python 3 [conda env:ml]``.

    ``fmt`` takes ``{display_name}`` (the kernelspec's own) and ``{env}`` (the environment's
    name, or its path when the name is ambiguous). Names without the provider's suffix are
    returned unchanged.
    """
    match = _CONDA_SUFFIX.search(display_name)
    if match is None:
        return display_name
    return fmt.format(display_name=display_name[: match.start()], env=match.group("label"))
