"""Jupyter's data, runtime and config directories, computed as ``jupyter_core.paths`` does.

The kernelspec search path must equal ``jupyter_core.paths.jupyter_path("kernels")`` so that
the spec provider finds exactly the kernels ``jupyter kernelspec list`` finds. Unlike
jupyter_core, everything here is computed on each call (environment variables are read every
time), and platformdirs is imported only when ``JUPYTER_PLATFORM_DIRS`` asks for it.
"""

from __future__ import annotations

import os
import site
import sys

__all__ = [
    "APPNAME",
    "ENV_CONFIG_PATH",
    "ENV_JUPYTER_PATH",
    "SYSTEM_CONFIG_PATH",
    "SYSTEM_JUPYTER_PATH",
    "envset",
    "jupyter_config_dir",
    "jupyter_config_path",
    "jupyter_data_dir",
    "jupyter_path",
    "jupyter_runtime_dir",
    "prefer_environment_over_user",
    "system_jupyter_path",
    "use_platform_dirs",
]

pjoin = os.path.join

# jupyter_core capitalises "Jupyter" only on Windows and macOS (outside Homebrew).
if sys.platform == "win32" or (
    sys.platform == "darwin" and not sys.prefix.startswith("/opt/homebrew")
):
    APPNAME = "Jupyter"
else:
    APPNAME = "jupyter"

_FALSY = ("no", "n", "false", "off", "0", "0.0")


def envset(name: str, default: bool = False) -> bool:
    """Return whether environment variable ``name`` is set to a true-ish value.

    Any value other than no/n/false/off/0/0.0 (case-insensitive) counts as set;
    ``default`` is returned when the variable is absent.
    """
    if name not in os.environ:
        return default
    return os.environ[name].lower() not in _FALSY


def use_platform_dirs() -> bool:
    """Whether ``JUPYTER_PLATFORM_DIRS`` asks for platformdirs' locations (default: no)."""
    return envset("JUPYTER_PLATFORM_DIRS", False)


def _platformdirs():  # type: ignore[no-untyped-def]
    import platformdirs  # deferred: only JUPYTER_PLATFORM_DIRS=1 needs it

    return platformdirs


# pathlib and tempfile are avoided here: this module is on `kernel-mgmt list`'s hot path.


def _home_dir() -> str:
    # realpath so that /home -> /usr/home symlinks (FreeBSD) give stable paths, as jupyter_core.
    return os.path.realpath(os.path.expanduser("~"))


def _do_i_own(path: str) -> bool:
    """Whether the current user owns ``path`` (or its first existing parent)."""
    p = os.path.realpath(path)
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    # First by name against the login name, as jupyter_core does (under sudo the login user,
    # not root, decides); getlogin() fails without a controlling terminal: then by uid.
    try:
        import pwd  # POSIX only; a builtin module, cheap to import

        return pwd.getpwuid(os.stat(p).st_uid).pw_name == os.getlogin()
    except Exception:
        pass
    if hasattr(os, "geteuid"):
        try:
            return os.stat(p).st_uid == os.geteuid()
        except OSError:
            pass
    return os.access(p, os.W_OK)


def prefer_environment_over_user() -> bool:
    """Whether environment-level paths come before user-level ones.

    ``JUPYTER_PREFER_ENV_PATH`` decides when set; otherwise yes inside a virtualenv or a
    non-base conda environment that the current user owns.
    """
    if "JUPYTER_PREFER_ENV_PATH" in os.environ:
        return envset("JUPYTER_PREFER_ENV_PATH")
    if sys.prefix != sys.base_prefix and _do_i_own(sys.prefix):
        return True
    return bool(
        "CONDA_PREFIX" in os.environ
        and sys.prefix.startswith(os.environ["CONDA_PREFIX"])
        and os.environ.get("CONDA_DEFAULT_ENV", "base") != "base"
        and _do_i_own(sys.prefix)
    )


_dtemps: dict[str, str] = {}


def _mkdtemp_once(name: str) -> str:
    try:
        return _dtemps[name]
    except KeyError:
        import tempfile

        d = _dtemps[name] = tempfile.mkdtemp(prefix=name + "-")
        return d


def jupyter_config_dir() -> str:
    """The user's Jupyter config directory (``JUPYTER_CONFIG_DIR`` or ``~/.jupyter``).

    ``JUPYTER_NO_CONFIG`` gives a private empty temporary directory instead.
    """
    env = os.environ
    if env.get("JUPYTER_NO_CONFIG"):
        return _mkdtemp_once("jupyter-clean-cfg")
    if env.get("JUPYTER_CONFIG_DIR"):
        return env["JUPYTER_CONFIG_DIR"]
    if use_platform_dirs():
        return _platformdirs().user_config_dir(APPNAME, appauthor=False)
    return pjoin(_home_dir(), ".jupyter")


def jupyter_data_dir() -> str:
    """The user's Jupyter data directory (``JUPYTER_DATA_DIR`` or the platform default)."""
    env = os.environ
    if env.get("JUPYTER_DATA_DIR"):
        return env["JUPYTER_DATA_DIR"]
    if use_platform_dirs():
        return _platformdirs().user_data_dir(APPNAME, appauthor=False)
    home = _home_dir()
    if sys.platform == "darwin":
        return pjoin(home, "Library", "Jupyter")
    if sys.platform == "win32":
        appdata = env.get("APPDATA")
        if appdata:
            return os.path.realpath(pjoin(appdata, "jupyter"))
        return pjoin(jupyter_config_dir(), "data")
    xdg = env.get("XDG_DATA_HOME") or pjoin(home, ".local", "share")
    return pjoin(xdg, "jupyter")


def jupyter_runtime_dir() -> str:
    """Where connection files live: ``JUPYTER_RUNTIME_DIR`` or ``<data dir>/runtime``."""
    env = os.environ
    if env.get("JUPYTER_RUNTIME_DIR"):
        return env["JUPYTER_RUNTIME_DIR"]
    return pjoin(jupyter_data_dir(), "runtime")


def _win_programdata() -> str | None:
    # %PROGRAMDATA% is writable by all users: jupyter_core trusts it only on opt-in.
    if os.name == "nt" and envset("JUPYTER_USE_PROGRAMDATA"):
        return os.environ.get("PROGRAMDATA")
    return None


def system_jupyter_path() -> list[str]:
    """System-wide data directories (``/usr/local/share/jupyter``, ``/usr/share/jupyter``)."""
    if use_platform_dirs():
        if os.name == "nt" and not envset("JUPYTER_USE_PROGRAMDATA"):
            return [pjoin(sys.prefix, "share", "jupyter")]
        return (
            _platformdirs()
            .site_data_dir(APPNAME, appauthor=False, multipath=True)
            .split(os.pathsep)
        )
    if os.name == "nt":
        programdata = _win_programdata()
        if programdata:
            return [pjoin(programdata, "jupyter")]
        return [pjoin(sys.prefix, "share", "jupyter")]
    return ["/usr/local/share/jupyter", "/usr/share/jupyter"]


def _system_config_path() -> list[str]:
    env_config = [pjoin(sys.prefix, "etc", "jupyter")]
    if use_platform_dirs():
        if os.name == "nt" and not envset("JUPYTER_USE_PROGRAMDATA"):
            return env_config
        return (
            _platformdirs()
            .site_config_dir(APPNAME, appauthor=False, multipath=True)
            .split(os.pathsep)
        )
    if os.name == "nt":
        programdata = _win_programdata()
        return [pjoin(programdata, "jupyter")] if programdata else env_config
    return ["/usr/local/etc/jupyter", "/etc/jupyter"]


#: ``<sys.prefix>/share/jupyter``: the environment-level data directory.
ENV_JUPYTER_PATH: list[str] = [pjoin(sys.prefix, "share", "jupyter")]
#: ``<sys.prefix>/etc/jupyter``: the environment-level config directory.
ENV_CONFIG_PATH: list[str] = [pjoin(sys.prefix, "etc", "jupyter")]
#: System data directories as computed at import time (jupyter_core's constant).
SYSTEM_JUPYTER_PATH: list[str] = system_jupyter_path()
#: System config directories as computed at import time (jupyter_core's constant).
SYSTEM_CONFIG_PATH: list[str] = _system_config_path()


def _user_site_dir(*parts: str) -> str | None:
    if not site.ENABLE_USER_SITE:
        return None
    userbase = site.getuserbase() if hasattr(site, "getuserbase") else site.USER_BASE
    return pjoin(userbase, *parts) if userbase else None


def _ordered(user: list[str], env_paths: list[str], system: list[str]) -> list[str]:
    # Windows usually has no separate system prefix: then env == system and must stay.
    env = env_paths if env_paths == system else [p for p in env_paths if p not in system]
    paths = [*env, *user] if prefer_environment_over_user() else [*user, *env]
    return paths


def jupyter_path(*subdirs: str) -> list[str]:
    """Directories to search for Jupyter data files, highest priority first.

    ``$JUPYTER_PATH`` first, then user and environment directories (environment first inside a
    virtualenv/conda env or with ``JUPYTER_PREFER_ENV_PATH``), then system directories.
    ``subdirs`` are joined onto each entry: ``jupyter_path("kernels")`` is the kernelspec path.
    """
    paths: list[str] = []
    if os.environ.get("JUPYTER_PATH"):
        paths.extend(p.rstrip(os.sep) for p in os.environ["JUPYTER_PATH"].split(os.pathsep))

    user = [jupyter_data_dir()]
    userdir = _user_site_dir("share", "jupyter")
    if userdir and userdir not in user:
        user.append(userdir)

    system = system_jupyter_path()
    env_paths = [pjoin(sys.prefix, "share", "jupyter")]
    paths.extend(_ordered(user, env_paths, system))
    for path in system:
        if path not in paths:
            paths.append(path)
    if subdirs:
        paths = [pjoin(p, *subdirs) for p in paths]
    return paths


def jupyter_config_path() -> list[str]:
    """Directories to search for Jupyter config files, highest priority first."""
    if os.environ.get("JUPYTER_NO_CONFIG"):
        return [jupyter_config_dir()]
    paths: list[str] = []
    if os.environ.get("JUPYTER_CONFIG_PATH"):
        paths.extend(p.rstrip(os.sep) for p in os.environ["JUPYTER_CONFIG_PATH"].split(os.pathsep))
    user = [jupyter_config_dir()]
    userdir = _user_site_dir("etc", "jupyter")
    if userdir and userdir not in user:
        user.append(userdir)
    system = _system_config_path()
    env_paths = [pjoin(sys.prefix, "etc", "jupyter")]
    paths.extend(_ordered(user, env_paths, system))
    for path in system:
        if path not in paths:
            paths.append(path)
    return paths
