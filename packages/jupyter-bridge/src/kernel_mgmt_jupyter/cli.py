"""``kernel-mgmt-jupyter``: sync kernelspec folders, list the Jupyter names, show the status.

Commands:

- ``sync [--user | --sys-prefix | --prefix P] [--prune] [--dry-run] [--json]``
- ``list [--json]``: every kernel type under its Jupyter name (and aliases)
- ``status [--json]``: is the bridge active for this Python's jupyter_server?
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kernel-mgmt-jupyter",
        description="The Jupyter bridge of kernel_mgmt: Jupyter Server lists every provider's "
        "kernels once this package is installed; `sync` writes kernelspec folders for tools "
        "that read only folders (nbclient, papermill, jupyter execute/console, nbconvert).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sync = sub.add_parser(
        "sync",
        help="write kernelspec folders for every non-spec kernel type",
        description="Write a kernelspec folder (naming the kernel-mgmt provisioner) for every "
        "kernel type not already a kernelspec folder, plus nb_conda_kernels-named folders for "
        "conda kernels; update the ones it wrote before; with --prune, remove those whose "
        "kernel type is gone. Folders it did not write are never touched.",
    )
    where = sync.add_mutually_exclusive_group()
    where.add_argument(
        "--user", action="store_true", help="the user's Jupyter data dir (the default)"
    )
    where.add_argument(
        "--sys-prefix", action="store_true", help=f"this Python's prefix ({sys.prefix})"
    )
    where.add_argument("--prefix", metavar="P", help="P/share/jupyter/kernels")
    sync.add_argument(
        "--prune", action="store_true", help="remove synced folders whose kernel type is gone"
    )
    sync.add_argument(
        "--remove",
        action="store_true",
        help="remove every folder sync wrote there (e.g. before uninstalling the bridge)",
    )
    sync.add_argument("--dry-run", action="store_true", help="report, change nothing")
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    lst = sub.add_parser("list", help="list kernel types under their Jupyter names")
    lst.add_argument("--json", action="store_true", help="print JSON")
    status = sub.add_parser(
        "status", help="show whether the bridge is active for this Python's jupyter_server"
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _finder_records() -> tuple[list[tuple[str, dict[str, Any]]], list[str], list[str]]:
    """Every kernel type (waiting for every provider), failed provider ids, problems."""
    from kernel_mgmt.discovery import KernelFinder

    finder = KernelFinder.from_entrypoints()
    records = list(finder.find_kernels())
    failed = [p.id for p in finder.providers if p.status == "failed"]
    return records, failed, [str(p) for p in finder.problems]


def _cmd_sync(args: argparse.Namespace) -> int:
    from .sync import kernels_dir, sync

    if args.prefix:
        import shlex

        flag = f"--prefix {shlex.quote(args.prefix)}"
    elif args.sys_prefix:
        flag = "--sys-prefix"
    else:
        flag = "--user"
    target = kernels_dir(user=args.user, sys_prefix=args.sys_prefix, prefix=args.prefix)
    records, failed, problems = ([], [], []) if args.remove else _finder_records()
    report = sync(
        target,
        records,
        flag=flag,
        failed_providers=failed,
        prune=args.prune,
        dry_run=args.dry_run,
        remove_all=args.remove,
    )
    report.problems.extend(problems)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
        return 0
    verb = "would change" if args.dry_run else "kernelspecs in"
    print(f"{verb} {target}:")
    for action in report.actions:
        print(f"  {action}")
    if not report.actions:
        print("  nothing to do: no kernel types besides kernelspec folders")
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    counts = ", ".join(
        f"{report.count(a)} {a}"
        for a in ("added", "updated", "unchanged", "removed", "kept", "skipped")
        if report.count(a)
    )
    if counts:
        print(counts)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .finders import Finders
    from .table import build_table

    finders = Finders(wait=60.0)
    try:
        table = build_table(finders.list_sync().records)
    finally:
        finders.close()
    aliases: dict[str, list[str]] = {}
    for alias, name in table.aliases.items():
        aliases.setdefault(name, []).append(alias)
    rows = [
        {
            "name": name,
            "type_id": e.type_id,
            "display_name": e.spec["display_name"],
            "aliases": sorted(aliases.get(name, [])),
        }
        for name, e in table.entries.items()
    ]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    headers = ("NAME", "TYPE ID", "DISPLAY NAME", "ALIASES")
    cells = [(r["name"], r["type_id"], r["display_name"], ", ".join(r["aliases"])) for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    for row in [headers, tuple("-" * w for w in widths), *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    for note in table.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from .status import bridge_status

    status = bridge_status()
    if args.json:
        print(json.dumps(status, indent=1))
        return 0
    server = status["jupyter_server"]
    print(f"kernel-mgmt-jupyter {status['version']} ({status['python']})")
    registered = "yes" if status["provisioner_registered"] else "NO"
    print(f"provisioner 'kernel-mgmt' registered: {registered}")
    if not server["installed"]:
        print(f"jupyter_server: not installed ({server['reason']})")
    elif server["active"]:
        print(f"jupyter_server {server['version']}: bridge active (every provider's kernels)")
    else:
        print(f"jupyter_server {server['version']}: bridge NOT active: {server['reason']}")
    for row in status["providers"]:
        why = f": {row['reason']}" if row["reason"] else ""
        print(f"provider {row['id']}: {row['status']}, {row['kernels']} kernel types{why}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kernel-mgmt-jupyter`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler = {"sync": _cmd_sync, "list": _cmd_list, "status": _cmd_status}[args.command]
    try:
        return handler(args)
    except Exception as e:  # a config error, an unwritable folder: one line, not a traceback
        from kernel_mgmt.config import ConfigError

        if not isinstance(e, (ConfigError, OSError, ValueError)):
            raise
        print(f"kernel-mgmt-jupyter {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
