"""``kernel-mgmt run TYPE [-c CODE | FILE | -]``: run code in a kernel from the terminal.

The code runs as one cell (or several, split on ``# %%`` lines with ``--cells``; markdown
cells are skipped). Output streams live: stdout/stderr as the kernel writes them,
``execute_result`` text, tracebacks. Rich outputs (PNG, SVG, HTML) are written to files in an
output folder (default ``./kernel-mgmt-output/``, made on first use) and the path is printed in
their place. ``input()`` in the kernel is answered from the terminal. Ctrl-C interrupts the
kernel; a second Ctrl-C while the interrupt is pending quits. SIGTERM and SIGHUP quit the same
way (the kernel is shut down and its files removed). IPython's ``exit()`` in a cell ends the
run there. ``--json`` prints every message as one JSON line, after a ``kernel_started`` line
saying whether the connection is CurveZMQ-encrypted. Exit statuses:
:data:`EXIT_CODES_HELP`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

from .runner_input import (
    EXIT_CODES_HELP,
    CodeDecodeError,
    _read_code,
    add_arguments,
    split_cells,
)
from .runner_output import (
    DEFAULT_OUTPUT_DIR,
    RICH_TYPES,
    OutputDirError,
    OutputWriter,
    _err,
    _screen,
    check_output_dir,
)

__all__ = [
    "DEFAULT_OUTPUT_DIR",
    "EXIT_CODES_HELP",
    "RICH_TYPES",
    "CodeDecodeError",
    "OutputDirError",
    "OutputWriter",
    "add_arguments",
    "check_output_dir",
    "main",
    "run",
    "split_cells",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 124, 130
#: Seconds to wait for the interrupted cell's execute_reply and idle after --timeout, before
#: shutting the kernel down (shutting down mid-reply makes ipykernel log a ZMQError).
INTERRUPT_GRACE_S = 5.0
#: Signals that stop a run in order (kernel shut down, files removed), as a second Ctrl-C does;
#: 128 + the signal number is the exit status, as a shell reports a process killed by it.
QUIT_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
#: Exit status when stdout's reader goes away (``| head``): 128 + SIGPIPE, as a shell
#: reports a program that SIGPIPE ended — but the kernel is shut down first.
SIGPIPE_NUMBER = int(getattr(signal, "SIGPIPE", 13))


def _selection_hint(finder: Any, type_id: str) -> str:
    """Why the provider of *type_id* may be missing: KERNEL_MGMT_PROVIDERS or the config
    narrows the providers (text to append to an unknown-kernel message, or '')."""
    from kernel_mgmt.selection import ENV_PROVIDERS, provider_selection_hints

    hints = provider_selection_hints(finder)
    env = os.environ.get(ENV_PROVIDERS)
    installed = {info.id for info in finder.providers}  # loaded, failed or disabled
    if not hints and env is not None and type_id.partition("/")[0] not in installed:
        hints = [f"{ENV_PROVIDERS}={env!r} limits which providers load"]
    return "".join(f"\n  hint: {h}" for h in hints)


def _startup_death(type_id: str, err: Any) -> str:
    """The message for a kernel that died while starting (*err*: its KernelDied, which
    names the kernel type when it is known and ends with the kernel's last stderr lines)."""
    text = str(err)
    prefix = "" if type_id in text else f"{type_id}: "
    return f"{prefix}the kernel failed to start: {text}"


async def _start(args: argparse.Namespace, finder: Any) -> tuple[Any, Any] | int:
    """Start the kernel: ``(manager, client)``, or the exit status after saying why not."""
    from kernel_mgmt.client_base import KernelDied
    from kernel_mgmt.curve import TransportEncryptionError
    from kernel_mgmt.discovery import InvalidLaunchParams, NoSuchKernel
    from kernel_mgmt.hl import start_kernel_async
    from kernel_mgmt.subproc.launcher import KernelLaunchError

    type_id = args.kernel_type
    try:
        return await start_kernel_async(
            type_id,
            cwd=args.cwd or os.getcwd(),
            startup_timeout=args.startup_timeout,
            finder=finder,
        )
    except NoSuchKernel as e:
        text = str(e)
        _err(text + ("" if "KERNEL_MGMT_PROVIDERS" in text else _selection_hint(finder, type_id)))
        return EXIT_USAGE
    except InvalidLaunchParams as e:
        _err(str(e))
        return EXIT_USAGE
    except KernelDied as e:
        _err(_startup_death(type_id, e))
        return EXIT_ERROR
    except TimeoutError:
        _err(
            f"{type_id}: the kernel was not ready within {args.startup_timeout:g} s "
            "(--startup-timeout S to wait longer)"
        )
        return EXIT_ERROR
    except (KernelLaunchError, TransportEncryptionError) as e:  # ours: says what and why
        _err(f"{type_id}: {e}")
        return EXIT_ERROR
    except Exception as e:  # anything else a provider's launch hook raised
        provider = type_id.partition("/")[0]
        _err(f"cannot start {type_id}: provider {provider!r} raised {type(e).__name__}: {e}")
        return EXIT_ERROR


def _asked_to_exit(reply: Any) -> bool:
    """True if the cell called IPython's ``exit()``/``quit()``: its execute_reply carries an
    ``ask_exit`` payload (``{"source": "ask_exit", "keepkernel": bool}``)."""
    payload = reply.content.get("payload") or []
    return any(isinstance(p, dict) and p.get("source") == "ask_exit" for p in payload)


async def _run(args: argparse.Namespace, code: str, finder: Any) -> int:
    """Start the kernel, run the code, shut the kernel down; the exit status."""
    cells = split_cells(code) if args.cells else [code]
    writer = OutputWriter(args.output_dir, args.json)
    loop = asyncio.get_running_loop()
    # What a signal handler may cancel: kernel start-up, the running cell, the shutdown wait.
    pending: dict[str, asyncio.Task[Any] | None] = {"start": None, "task": None, "shutdown": None}
    state: dict[str, Any] = {"interrupting": False, "quit": False, "ctrl_c": False, "signal": 0}
    background: set[asyncio.Task[Any]] = set()

    def on_quit_signal(signum: int, quiet: bool = False) -> None:
        # SIGTERM (kill, timeout, a service manager) or SIGHUP (the terminal closed): quit as
        # a second Ctrl-C does, so the kernel is shut down and its connection file removed
        # rather than left behind when the default action kills us. Another one while the
        # kernel is shutting down stops waiting for it: it is killed and its files removed.
        if not state["signal"]:
            state["signal"] = signum
            state["quit"] = True
            if not quiet:
                _err(f"{signal.Signals(signum).name} received; shutting the kernel down")
        for key in ("start", "task", "shutdown"):
            task = pending[key]
            if task is not None and not task.done():
                task.cancel()

    def on_broken_pipe() -> None:
        # The reader of our output went away (``| head``): stop quietly, as SIGPIPE would, but
        # with the kernel shut down and its files removed. Only once: later writes are dropped.
        if not state["signal"]:
            loop.call_soon_threadsafe(on_quit_signal, SIGPIPE_NUMBER, True)

    _screen.on_broken_pipe = on_broken_pipe
    installed: list[tuple[int, Any]] = []
    for sig in QUIT_SIGNALS:
        previous = signal.getsignal(sig)
        if previous == signal.SIG_IGN:  # nohup and the like: respect an ignored signal
            continue
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_quit_signal, sig)
            installed.append((sig, previous))
    try:
        start = pending["start"] = loop.create_task(_start(args, finder))
        try:
            await asyncio.wait({start})
        except asyncio.CancelledError:  # Ctrl-C while starting: let the start clean up
            start.cancel()
            await asyncio.wait({start})
            raise
        if start.cancelled():
            if not state["signal"]:
                raise asyncio.CancelledError
            # start_kernel_async kills a kernel that is cancelled before it is ready.
            return 128 + state["signal"]
        started = start.result()
        if isinstance(started, int):
            return started
        km, kc = started
        if args.json:
            writer.kernel_line(args.kernel_type, kc.connection_info)
        status = await _run_cells(args, cells, writer, km, kc, pending, state, background)
    finally:
        _screen.on_broken_pipe = None
        for sig, previous in installed:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
                signal.signal(sig, previous)
    if state["signal"]:
        status = 128 + state["signal"]
    if writer.saved and not args.json:
        folder = os.path.abspath(writer.output_dir)
        _err(f"{len(writer.saved)} rich output(s) written to {folder}")
    return status


async def _run_cells(
    args: argparse.Namespace,
    cells: list[str],
    writer: OutputWriter,
    km: Any,
    kc: Any,
    pending: dict[str, asyncio.Task[Any] | None],
    state: dict[str, Any],
    background: set[asyncio.Task[Any]],
) -> int:
    """Run *cells* in the started kernel, then shut it down; the exit status."""
    from kernel_mgmt.client_base import KernelDied

    loop = asyncio.get_running_loop()

    def quit_status() -> int:
        return 128 + state["signal"] if state["signal"] else EXIT_INTERRUPTED

    def on_sigint() -> None:
        task = pending["task"]
        if task is None or task.done():
            return
        state["ctrl_c"] = True
        if state["interrupting"]:
            # Second Ctrl-C while the first is pending: stop waiting and quit.
            state["quit"] = True
            _err("quitting")
            task.cancel()
            return
        state["interrupting"] = True
        _err("interrupting the kernel (Ctrl-C again to quit)")
        t = loop.create_task(kc.interrupt())
        background.add(t)
        t.add_done_callback(background.discard)

    def on_shell(msg: Any) -> None:
        if args.json and msg.msg_type == "execute_reply":
            writer.json_line("shell", msg)

    def on_stdin(msg: Any) -> None:
        if args.json:
            writer.json_line("stdin", msg)

    status = EXIT_OK
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    kc.add_handler(on_shell, "shell")
    kc.add_handler(on_stdin, "stdin")
    try:
        for cell in cells:
            if state["signal"]:
                status = quit_status()
                break
            state["interrupting"] = False
            task = pending["task"] = loop.create_task(
                kc.execute_interactive(cell, output_hook=writer, stop_on_error=True)
            )
            await asyncio.wait({task}, timeout=args.timeout)
            if not task.done():
                _err(f"the cell ran longer than --timeout {args.timeout:g} s; interrupting it")
                state["interrupting"] = True
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(kc.interrupt(), INTERRUPT_GRACE_S)
                # Let the kernel send the interrupted cell's execute_reply and idle before the
                # shutdown_request: a kernel shut down mid-reply logs a ZMQError traceback.
                await asyncio.wait({task}, timeout=INTERRUPT_GRACE_S)
                if not task.done():
                    task.cancel()
                    await asyncio.wait({task})
                if not task.cancelled():
                    task.exception()  # retrieved: a reply or KernelDied no longer matters
                status = quit_status() if state["quit"] else EXIT_TIMEOUT
                break
            if task.cancelled():
                if not state["quit"]:
                    raise asyncio.CancelledError
                status = quit_status()
                break
            try:
                reply = task.result()
            except KernelDied as e:
                _err(str(e))
                status = EXIT_ERROR
                break
            if state["ctrl_c"] or state["signal"]:  # the user stopped the run
                status = quit_status()  # (the cell may have caught the KeyboardInterrupt)
                break
            if writer.failure is not None:
                status = EXIT_ERROR
                break
            if reply.content.get("status") != "ok":
                if reply.content.get("status") == "aborted":
                    _err("execution was aborted")
                status = EXIT_ERROR
                break
            if _asked_to_exit(reply):  # exit() is a normal end of the run, like the last cell
                break
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        shutdown = pending["shutdown"] = loop.create_task(
            kc.shutdown_or_terminate(timeout=1.0 if state["quit"] else 5.0)
        )
        try:
            await asyncio.wait({shutdown})
            if not shutdown.cancelled():  # cancelled by a quit signal: kill it below
                shutdown.result()
        finally:
            if not shutdown.done():  # we were cancelled (Ctrl-C while shutting down)
                shutdown.cancel()
            with contextlib.suppress(Exception):
                await km.kill()
            with contextlib.suppress(Exception):
                await km.cleanup()
            kc.close()
    return status


def run(args: argparse.Namespace) -> int:
    """Run ``kernel-mgmt run`` with parsed *args*; returns the exit status."""
    from kernel_mgmt.config import ConfigError

    if args.code is not None and args.file is not None:
        _err("give either -c CODE or FILE, not both")
        return EXIT_USAGE
    if args.cwd is not None and not os.path.isdir(args.cwd):
        why = "not a folder" if os.path.exists(args.cwd) else "no such folder"
        _err(f"--cwd {args.cwd}: {why}")
        return EXIT_USAGE
    if args.output_dir is not None and not args.json:
        # Only a folder the user asked for is checked up front (a usage error, exit 2), and
        # made once the code is read: an access check alone passes folders that cannot be
        # made (/proc/x as root). The default one is made on first use: a run without rich
        # outputs must work in a folder the user cannot write to; one with them then fails
        # there (OutputDirError, exit 1).
        why = check_output_dir(args.output_dir)
        if why is not None:
            _err(str(OutputDirError(args.output_dir, why)))
            return EXIT_USAGE
    try:
        code = _read_code(args)
    except OSError as e:
        _err(f"cannot read {args.file}: {e.strerror or e}")
        return EXIT_USAGE
    except CodeDecodeError as e:
        _err(str(e))
        return EXIT_USAGE
    if code is None:
        _err("give the code to run: -c CODE, a FILE, or - for stdin")
        return EXIT_USAGE
    if args.output_dir is not None and not args.json:
        try:
            os.makedirs(args.output_dir, exist_ok=True)
        except OSError as e:
            why = f"cannot create it: {e.strerror or e}"
            _err(str(OutputDirError(args.output_dir, why)))
            return EXIT_USAGE
    try:
        from kernel_mgmt.discovery import KernelFinder

        try:
            finder = KernelFinder.from_entrypoints()
        except ConfigError as e:  # as `kernel-mgmt list` reports it: a usage/config error
            _err(str(e))
            return EXIT_USAGE
        return asyncio.run(_run(args, code, finder))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        _screen.fresh_line()  # a shell prompt must not follow output without a newline


def main(argv: list[str] | None = None) -> int:
    """``python -m kernel_mgmt.runner TYPE ...`` (the same as ``kernel-mgmt run``)."""
    parser = argparse.ArgumentParser(prog="kernel-mgmt run", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
