"""Jupyter kernel names for kernel_mgmt type ids, and back.

Jupyter names a kernel with one word that its URLs accept (``[\\w.\\-%]+``, no ``/``), that
tools store in notebooks (``metadata.kernelspec.name``) and that ``kernel-mgmt-jupyter sync``
uses as a kernelspec folder name (compared lower-cased). The scheme:

- ``spec/NAME`` is ``NAME``: every existing notebook (``python3``) opens as before.
- Conda kernels are listed under the name nb_conda_kernels gives them
  (:func:`nb_conda_name`, :func:`nb_conda_env_names`): ``conda-env-ml-py``,
  ``conda-base-py``, so that JupyterLab opens notebooks saved under nb_conda_kernels on the
  same environment. Such a name that is taken (by a kernelspec folder, which wins, or by an
  earlier conda kernel) or that would hold ``__`` falls back to the canonical name below.
- Every other type (and those fallbacks) has its canonical name (:func:`jupyter_name`):
  ``PROVIDER/KERNEL`` is ``PROVIDER__KERNEL`` (two underscores), each part escaped: the
  characters ``a-z 0-9 . -`` stand for themselves, every other byte of the part's UTF-8
  (``_`` included, upper-case letters too) is ``_`` plus two lower-case hex digits. A part
  therefore never holds ``__`` (an escape's ``_`` is always followed by a hex digit), so the
  first ``__`` is the separator and the mapping is reversible (:func:`type_id_for`) and
  collision-free between providers: ``conda/ml-python3`` is ``conda__ml-python3``,
  ``pyimport/kernel`` is ``pyimport__kernel``, ``x/My_K`` is ``x__my_5fk``... (``_4d`` for
  the ``M``). A conda kernel listed under its nb_conda_kernels name still answers to it.
- Only a kernelspec folder whose own name holds ``__`` could look like another provider's
  kernel; the spec manager keeps the folder's name and gives the other type its name plus
  ``-`` and 6 hex digits of the sha1 of its type id (stable, and reported).

Every listed name leads back to its type id through the listing (the spec manager's
``type_id(name)``, and ``metadata.kernel_mgmt.type_id`` of every kernelspec).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "NB_CONDA_BASE",
    "SEPARATOR",
    "conda_aliases",
    "conda_display_name",
    "conda_metadata",
    "decode_part",
    "encode_part",
    "fallback_name",
    "jupyter_name",
    "nb_conda_env_names",
    "nb_conda_name",
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
#: nb_conda_kernels' name for the base environment (its ``base_name`` default); "root" is
#: what its 1.x releases called it, so notebooks saved then say ``conda-root-py``.
NB_CONDA_BASE = "base"
_NB_CONDA_OLD_BASE = "root"


def conda_metadata(attributes: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The conda provider's ``metadata.conda`` of a kernel type (None for other kernels)."""
    metadata = attributes.get("metadata") or {}
    conda = metadata.get("conda") if isinstance(metadata, Mapping) else None
    return conda if isinstance(conda, Mapping) and conda.get("env_prefix") else None


def _clean(name: str) -> str:
    """nb_conda_kernels' ``clean_kernel_name``: accents dropped, other characters ``_``."""
    if not name.isascii():
        import unicodedata  # deferred: only for names that need it

        decomposed = unicodedata.normalize("NFKD", name)
        name = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NB_CONDA_CLEAN.sub("_", name)


def _prefix(conda: Mapping[str, Any]) -> str:
    return str(conda.get("env_prefix") or "").rstrip("/" + os.sep)


def _kernel_part(conda: Mapping[str, Any]) -> str:
    # No kernelspec folder (the provider found ipykernel itself): nb_conda_kernels would have
    # the python3 folder that conda's ipykernel package installs.
    kernel = str(conda.get("kernelspec") or "python3")
    return _NB_CONDA_SHORT.get(kernel, kernel)


def _project_env_name(conda: Mapping[str, Any], taken: Iterable[str] = ()) -> str:
    """nb_conda_kernels' environment name before its counter: the folder name, or
    ``<project>-<env>`` for an env in an ``envs`` folder other than its root's (or whose
    plain name is taken)."""
    prefix = _prefix(conda)
    parent, name = os.path.split(prefix)
    root = conda.get("root_prefix")
    default_envs = os.path.join(str(root), "envs").rstrip("/" + os.sep) if root else None
    if os.path.basename(parent) == "envs" and (parent != default_envs or name in taken):
        name = f"{os.path.basename(os.path.dirname(parent))}-{name}"
    return name


def nb_conda_env_names(condas: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``{env prefix: environment name}`` as nb_conda_kernels names the environments.

    nb_conda_kernels (``CondaKernelSpecManager._all_envs``) walks conda's environment list
    (sorted by path), names the base environment ``base`` and every other one after its
    folder — ``<project>-<env>`` for an env in an ``envs`` folder other than the root's, or
    whose name is taken — and numbers the later of two equal names ``<name>-2``, ``-3``...
    Here the order is: base environments first, then every environment by its path, so the
    names do not depend on the order providers list them in.
    """
    envs: dict[str, Mapping[str, Any]] = {}
    for conda in condas:
        prefix = _prefix(conda)
        if prefix:
            envs.setdefault(prefix, conda)
    names: dict[str, str] = {}
    taken: set[str] = set()
    for prefix in sorted(envs, key=lambda p: (not envs[p].get("is_base"), p)):
        conda = envs[prefix]
        name = NB_CONDA_BASE if conda.get("is_base") else _project_env_name(conda, taken)
        if name in taken:
            stem, n = name, 2
            while f"{stem}-{n}" in taken:
                n += 1
            name = f"{stem}-{n}"
        taken.add(name)
        names[prefix] = name
    return names


def nb_conda_name(env_name: str, is_base: bool, conda: Mapping[str, Any]) -> str:
    """nb_conda_kernels' kernel name: ``conda-env-<env>-<kernel>``, ``conda-<base>-<kernel>``.

    ``python2``/``python3`` become ``py`` and ``ir`` becomes ``r``; characters other than
    ``A-Z a-z 0-9 . _ -`` become ``_`` (accents are dropped first). The case is kept, as
    nb_conda_kernels keeps it: JupyterLab matches a notebook's kernel name exactly.
    """
    middle = "" if is_base else "env-"
    return _clean(f"conda-{middle}{env_name}-{_kernel_part(conda)}")


def conda_aliases(attributes: Mapping[str, Any]) -> list[str]:
    """nb_conda_kernels' names for one conda provider kernel, judged from it alone.

    The first is the name nb_conda_kernels lists it under when no other environment has the
    same name (the spec manager lists it so, see :func:`nb_conda_env_names` for the numbering
    of equal names); the others are older names it answers to: ``conda-root-<kernel>`` for
    the base environment (nb_conda_kernels 1.x), ``conda-env-<env>-<kernel>`` for an env in
    another project's ``envs`` folder (listed as ``conda-env-<project>-<env>-<kernel>``).
    """
    conda = conda_metadata(attributes)
    if conda is None:
        return []
    if conda.get("is_base"):
        envs = [NB_CONDA_BASE, _NB_CONDA_OLD_BASE]
    else:
        envs = [_project_env_name(conda), os.path.basename(_prefix(conda))]
    aliases: list[str] = []
    for env in envs:
        alias = nb_conda_name(env, bool(conda.get("is_base")), conda)
        if alias not in aliases:
            aliases.append(alias)
    return aliases


def conda_display_name(
    display_name: str, fmt: str = "{display_name} [conda env:{env}]", env: str | None = None
) -> str:
    """Turn the conda provider's ``Python 3 (conda: ml)`` into ``Python 3 [conda env:ml]``.

    ``fmt`` takes ``{display_name}`` (the kernelspec's own) and ``{env}``: ``env`` when given
    (the spec manager passes nb_conda_kernels' name of the environment), else the provider's
    label (the environment's name, or its path when the name is ambiguous). Names without the
    provider's suffix are returned unchanged.
    """
    match = _CONDA_SUFFIX.search(display_name)
    if match is None:
        return display_name
    label = env if env is not None else match.group("label")
    return fmt.format(display_name=display_name[: match.start()], env=label)
