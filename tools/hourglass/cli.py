"""`hourglass` command line: one entry point, one subcommand per host tool.

Each subcommand lives in its own module with `register(subparsers)`, which adds its parser and sets
`func(args) -> int` as the handler. A handler raises `hourglass.common.UserError` for what the user can
fix; it is printed here once, as `hourglass <command>: <message>`, exit status 1 (usage errors: 2). Modules
import their heavy dependencies inside the handler so that `hourglass --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from hourglass.common import UserError

# Add a module here when it provides a subcommand.
SUBCOMMAND_MODULES = [
    "bench",
    "packages",
    "boards",
    "build",
    "flash",
    "gateway",
    "vboard",
    "deploy",
    "repl",
    "keys",
    "cose_tool",
    "suit",
    "noob_cli",
    "oscore_tool",
    "demo",
    "config",
    "frozen_vm",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hourglass", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"hourglass.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"hourglass {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
