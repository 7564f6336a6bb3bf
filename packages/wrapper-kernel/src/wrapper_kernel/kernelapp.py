"""Starting a kernel from the command line: ``-f CONNECTION_FILE`` or ``install``.

``KernelApp.launch_instance(kernel_class=MyKernel)`` is the seed's start-up line
(``IPKernelApp`` is the same class, so seed code only changes its import). The command line
is parsed by hand: ``argparse`` would cost start-up time on every kernel launch.

Start-up is the top layer of the package: it creates the socket loop
(:mod:`wrapper_kernel.server`) and the author's kernel (:mod:`wrapper_kernel.kernelbase`),
which know each other only through :mod:`wrapper_kernel.interface`, and connects them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from .kernelbase import Kernel, set_launcher
from .stderr import warn as _warn

__all__ = ["IPKernelApp", "KernelApp", "UsageError"]

USAGE = """\
usage: python -m MODULE -f CONNECTION_FILE      run the kernel
       python -m MODULE install [--user | --sys-prefix | --prefix PREFIX] [--name NAME]
                                [--display-name NAME]   install its kernelspec

Without -f, a new connection file is written to the Jupyter runtime directory."""


class UsageError(ValueError):
    """The kernel's command line could not be understood."""


def parse_args(argv: list[str]) -> dict[str, Any]:
    """Parse ``-f FILE`` (also ``-f=FILE``, ``--f=FILE``, ``--connection-file FILE``).

    Options ipykernel accepts and we have no use for (``--IPKernelApp.x=y``, ``--debug``)
    are ignored with a warning, so existing kernelspecs keep working.
    """
    out: dict[str, Any] = {"connection_file": None, "help": False}
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in ("-f", "--f", "--connection-file", "--connection_file"):
            if not eq:
                i += 1
                if i >= len(args):
                    raise UsageError(f"{name} needs a connection file path")
                value = args[i]
            out["connection_file"] = value
        elif arg in ("-h", "--help", "help"):
            out["help"] = True
        else:
            _warn(f"ignoring unknown argument {arg!r}")
        i += 1
    return out


class KernelApp:
    """Reads the connection file, binds the channels and serves ``kernel_class``."""

    def __init__(
        self,
        kernel_class: type[Kernel],
        connection_file: str | None = None,
        **kernel_kwargs: Any,
    ) -> None:
        if not (isinstance(kernel_class, type) and issubclass(kernel_class, Kernel)):
            raise TypeError(
                f"kernel_class must be a subclass of wrapper_kernel.Kernel, got {kernel_class!r}"
            )
        self.kernel_class = kernel_class
        self.connection_file = connection_file
        self.kernel_kwargs = kernel_kwargs

    @classmethod
    def launch_instance(
        cls,
        argv: list[str] | None = None,
        *,
        kernel_class: type[Kernel] | None = None,
        **kwargs: Any,
    ) -> None:
        """Run from the command line (``sys.argv[1:]`` by default), then exit.

        ``install ...`` installs the kernelspec instead of running the kernel.
        """
        if kernel_class is None:
            raise TypeError("launch_instance() needs kernel_class=YourKernel")
        args = sys.argv[1:] if argv is None else list(argv)
        if args and args[0] == "install":
            from .install import main as install_main

            sys.exit(install_main(kernel_class, args[1:]))
        try:
            opts = parse_args(args)
        except UsageError as e:
            print(f"error: {e}\n{USAGE}", file=sys.stderr)
            sys.exit(2)
        if opts["help"]:
            print(USAGE)
            return
        app = cls(kernel_class, opts["connection_file"], **kwargs)
        try:
            app.start()
        except Exception as e:
            from .server import KernelStartupError

            try:
                from kernel_mgmt.connection import ConnectionFileError
            except ImportError:  # pragma: no cover - older kernel_mgmt
                ConnectionFileError = KernelStartupError  # type: ignore[assignment,misc]
            if isinstance(e, KernelStartupError | ConnectionFileError):
                print(f"{kernel_class.__name__}: {e}", file=sys.stderr)
                sys.exit(1)
            raise

    def start(self) -> None:
        """Bind, create the kernel, serve until shutdown."""
        from kernel_mgmt.connection import read_connection_file, write_connection_file

        from .server import KernelServer

        own_file = self.connection_file is None
        if self.connection_file is None:
            path, info = write_connection_file()
            self.connection_file = path
            print(f"To connect a client: --existing {os.path.basename(path)}", file=sys.stderr)
        else:
            info = read_connection_file(self.connection_file)
        try:
            server = KernelServer(info, self.connection_file)
            kernel = self.kernel_class(**self.kernel_kwargs)
            server.attach(kernel)
            self.server = server
            self.kernel = kernel
            server.serve()
        finally:
            if own_file:  # we wrote it, so we remove it (as ipykernel does)
                with contextlib.suppress(OSError):
                    os.remove(self.connection_file)


#: The seed imports ``IPKernelApp`` (from ipykernel); the same class under that name.
IPKernelApp = KernelApp

# Kernel.launch_instance runs this (the layer below never imports this module).
set_launcher(KernelApp.launch_instance)
