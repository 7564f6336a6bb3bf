"""Start a kernel inside a conda environment, activated, as our direct child process."""

from __future__ import annotations

import os
import sys
from typing import Any

from kernel_mgmt.kernelspec import expand_env
from kernel_mgmt.subproc.launcher import KernelLaunchError, SubprocessKernelLauncher

from ._activate import activate_scripts, activated_environ, shell_wrapper

__all__ = ["CondaKernelLauncher", "launch_record"]


class CondaKernelLauncher(SubprocessKernelLauncher):
    """A subprocess launcher whose kernel sees the environment conda activation gives.

    The activation is applied to the environment the base launcher builds (ours plus its
    own variables), then the kernelspec's ``env`` goes on top, as for any kernelspec.
    """

    def __init__(
        self,
        kernel_cmd: list[str],
        *,
        prefix: str,
        default_env: str,
        root_prefix: str | None = None,
        spec_env: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(kernel_cmd, **kwargs)
        self.prefix = prefix
        self.default_env = default_env
        self.root_prefix = root_prefix
        self.spec_env = dict(spec_env or {})

    def build_popen_kwargs(self, connection_file: str) -> dict[str, Any]:
        """The base launcher's arguments with an activated environment."""
        kwargs = super().build_popen_kwargs(connection_file)
        env = activated_environ(kwargs["env"], self.prefix, self.default_env, self.root_prefix)
        # ${VAR} in a kernelspec's env refers to the activated environment (PATH with the env's
        # bin first), as it would for a kernel started from an activated shell.
        env.update(expand_env(self.spec_env, env))
        kwargs["env"] = env
        return kwargs


def launch_record(
    record: dict[str, Any],
    cwd: str | None,
    launch_params: dict[str, Any] | None,
    kernel_id: str | None = None,
) -> CondaKernelLauncher:
    """A launcher for one discovered kernel record (see ``_discover``'s records).

    :raises KernelLaunchError: when the environment has gone since it was found.
    """
    attrs = record["attributes"]
    env = record["env"]
    prefix = env["prefix"]
    type_id = f"conda/{record['name']}"
    if not os.path.isdir(os.path.join(prefix, "conda-meta")):
        raise KernelLaunchError(
            f"cannot start kernel {type_id!r}: conda environment {prefix} no longer exists; "
            "list the kernels again"
        )
    argv = list(attrs["argv"])
    if sys.platform != "win32" and activate_scripts(prefix):
        # The activate.d scripts are shell code: a shell sources them and then `exec`s the
        # kernel, which so keeps the shell's pid and process group (signals still work).
        argv = shell_wrapper(argv)
    return CondaKernelLauncher(
        argv,
        prefix=prefix,
        default_env=env["default_env"],
        root_prefix=env.get("root_prefix"),
        spec_env=attrs.get("env") or {},
        cwd=cwd,
        launch_params=launch_params,
        kernel_name=type_id,
        resource_dir=attrs.get("resource_dir"),
        interrupt_mode=attrs.get("interrupt_mode", "signal"),
        kernel_id=kernel_id,
    )
