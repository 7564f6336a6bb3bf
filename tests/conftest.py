"""Every test gets its own user directories and none of the launching shell's Jupyter/conda state.

Other people run kernels and Jupyter servers on the same machine, as the same user, at the same
time as the suite: whatever sits in the real ``~/.ipython``, ``~/.jupyter``,
``~/.local/share/jupyter``, ``~/.config/kernel_mgmt`` or ``~/.cache/kernel_mgmt`` is theirs, and
a variable like ``CONDA_PREFIX``, ``JPY_PARENT_PID`` or ``KERNEL_MGMT_PROVIDERS`` inherited from
the shell that started pytest says where *that* shell was. A test that needs one of these sets it
itself (its own fixture runs after this one and wins).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

#: Inherited variables dropped for every test (prefixes): conda/mamba activation, what a
#: Jupyter-launched process carries, and our own selection/config switches.
_DROPPED_PREFIXES = ("CONDA", "_CE_", "MAMBA_", "JPY_", "KERNEL_MGMT_")


def pytest_configure(config: pytest.Config) -> None:
    """Give the test process (and so every process it starts) the terminal's SIGINT/SIGQUIT.

    A shell without job control (a script running ``pytest &``, some CI runners) starts
    background commands with SIGINT and SIGQUIT *ignored*, and an ignored signal stays
    ignored across fork and exec: every kernel and child the tests start would then ignore
    the interrupts the tests send them (a plain Python never installs its KeyboardInterrupt
    handler when SIGINT was ignored at start-up). Restored here so no test depends on how
    the suite was launched.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if hasattr(signal, "SIGQUIT") and signal.getsignal(signal.SIGQUIT) is signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def _private_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point every per-user location a test might read or write at a fresh folder.

    Not inside ``tmp_path``: tests that list their own ``tmp_path`` see only what they made.
    HOME itself stays (pip and the matplotlib font cache read it); what lives under it is
    redirected through the variables each tool honours.
    """
    for name in list(os.environ):
        if name.startswith(_DROPPED_PREFIXES):
            monkeypatch.delenv(name)
    user = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("IPYTHONDIR", str(user / "ipython"))  # history.sqlite, startup files
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(user / "jupyter-config"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(user / "jupyter-data"))  # user kernelspecs
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(user / "jupyter-runtime"))  # connection files
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user / "config"))  # kernel_mgmt config.toml
    monkeypatch.setenv("KERNEL_MGMT_CONDA_CACHE_DIR", str(user / "conda-cache"))
    return user
