"""``kernel-mgmt``: list kernel types and providers, run a kernel.

``kernel-mgmt list`` is a hot path (editors call it on start-up): it imports the finder and
the installed providers only — no jsonschema, no zmq, no asyncio, no pluggy. ``list`` and
``providers`` with or without ``--json``, spelled exactly so, are answered without argparse
(argparse, the gettext it calls and the shutil it imports for the help width cost more than
reading 500 kernelspecs); every other command line goes through the argparse parser, which
gives the same answer for these. The ``run`` subcommand's module is imported only when
``run`` is asked for.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    import argparse
from .selection import provider_selection_hints

PROG = "kernel-mgmt"
EPILOG = """\
environment:
  KERNEL_MGMT_PROVIDERS=spec,pyimport  load only these providers (empty: none)
  KERNEL_MGMT_CONFIG=FILE              the config file to read

exit status:
  0    success (list/providers: also when a provider failed; its problem is on stderr)
  2    usage error or bad config file
  run  also: 1 error in the code or the kernel, 124 --timeout, 130 Ctrl-C,
       143 SIGTERM, 129 SIGHUP (see kernel-mgmt run --help)
"""


def _table(rows: list[list[str]], headers: list[str]) -> str:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, ["-" * w for w in widths], *rows]:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _discover() -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    """Load the providers and find every kernel type: ``(finder, kernels)``.

    Providers' own prints go to stderr meanwhile: our stdout is for the table or the JSON
    document only (a stray print would make ``--json`` unparseable).
    """
    from .discovery import KernelFinder

    stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        finder = KernelFinder.from_entrypoints()
        return finder, list(finder.find_kernels())
    finally:
        sys.stdout = stdout


def cmd_list(args: argparse.Namespace) -> int:
    """Print every kernel type from every provider."""
    finder, kernels = _discover()
    for hint in provider_selection_hints(finder):
        print(f"{PROG}: hint: {hint}", file=sys.stderr)
    if args.json:
        import json

        from .config import transport_encryption_policy
        from .curve import describe

        policy = transport_encryption_policy(finder.config)
        payload = {
            # "encryption": whether a launch gets CurveZMQ keys (kernel_mgmt.curve.describe).
            "kernels": {
                type_id: {**attrs, "encryption": describe(attrs, policy=policy)}
                for type_id, attrs in kernels
            },
            "problems": [str(p) for p in finder.problems],
        }
        print(json.dumps(payload, indent=2, default=str))
        return 0
    if not kernels:
        print("No kernel types found.", file=sys.stderr)
        return 0
    rows = [
        [
            type_id,
            str(attrs.get("display_name", "")),
            str(attrs.get("language", "")),
            type_id.partition("/")[0],
        ]
        for type_id, attrs in kernels
    ]
    print(_table(rows, ["TYPE ID", "DISPLAY NAME", "LANGUAGE", "PROVIDER"]))
    return 0


def cmd_providers(args: argparse.Namespace) -> int:
    """Print every installed provider with its distribution, version and status."""
    # Discovery runs too, so that providers failing in find_kernels show as failed.
    finder, _kernels = _discover()
    infos = finder.providers
    if args.json:
        import json

        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    if not infos:
        print("No providers installed.", file=sys.stderr)
        return 0
    rows = []
    for info in infos:
        reason = info.reason or "; ".join(info.problems) or info.note
        rows.append(
            [
                info.id,
                info.distribution or "-",
                info.version or "-",
                info.status,
                "-" if info.kernels is None else str(info.kernels),
                reason,
            ]
        )
    print(_table(rows, ["ID", "DISTRIBUTION", "VERSION", "STATUS", "KERNELS", "REASON"]))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Delegate to :mod:`kernel_mgmt.runner`."""
    from . import runner

    return int(runner.run(args) or 0)


def _wants_run(argv: Sequence[str]) -> bool:
    first = next((a for a in argv if not a.startswith("-")), None)
    return first == "run"


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The ``kernel-mgmt`` argument parser; ``run``'s options load only when ``run`` is used."""
    import argparse

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Find, list and run Jupyter kernels from every installed provider.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_list = sub.add_parser(
        "list",
        help="list kernel types from every provider",
        description="List kernel types (type id, display name, language, provider).",
    )
    p_list.add_argument("--json", action="store_true", help="print JSON for machines")
    p_list.set_defaults(func=cmd_list)

    p_prov = sub.add_parser(
        "providers",
        help="list installed providers and their status",
        description="List installed providers: id, distribution, version, status (ok/failed/"
        "disabled) and the reason.",
    )
    p_prov.add_argument("--json", action="store_true", help="print JSON for machines")
    p_prov.set_defaults(func=cmd_providers)

    p_run = sub.add_parser(
        "run",
        help="start a kernel by type id and run code in it",
        description="Start a kernel by type id (e.g. spec/python3), run code in it from\n"
        "-c CODE, FILE or stdin (-), and stream its output. Rich outputs (PNG, SVG, HTML)\n"
        "are written to files; input() is answered from the terminal; Ctrl-C interrupts\n"
        "the kernel, a second Ctrl-C quits.",
    )
    p_run.set_defaults(func=cmd_run)
    if _wants_run(argv):
        from . import runner  # deferred: the client stack is heavy and only `run` needs it

        runner.add_arguments(p_run)
    return parser


def _fast_args(argv: Sequence[str]) -> Any:
    """The parsed arguments of ``list``/``providers`` [``--json``] spelled exactly so, as the
    parser would give them (``command``, ``json``, ``func``); None for anything else."""
    if not argv or len(argv) > 2 or (len(argv) == 2 and argv[1] != "--json"):
        return None
    func = {"list": cmd_list, "providers": cmd_providers}.get(argv[0])
    if func is None:
        return None
    import types

    return types.SimpleNamespace(command=argv[0], json=len(argv) == 2, func=func)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kernel-mgmt`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Provider problems are logged by the finder (logging is imported only then); without a
    # configured handler, logging's last-resort handler prints them, one line each, on stderr.
    args = _fast_args(argv)
    if args is None:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return 2
    from .config import ConfigError

    try:
        return int(args.func(args))
    except ConfigError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `kernel-mgmt list | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
