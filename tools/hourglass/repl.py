"""`hourglass repl`: open a board's REPL through mpremote.

`--resume` keeps mpremote from soft-resetting the board when it connects (useful when an app runs and you want
to look at it as it is); the virtual board supports both. `--dry-run` prints the exact invocation.
"""
from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path


def mpremote_binary() -> str:
    """mpremote from the project venv (next to the running interpreter), then PATH."""
    candidate = Path(sys.executable).parent / "mpremote"
    if candidate.exists():
        return str(candidate)
    return shutil.which("mpremote") or "mpremote"


def repl_command(port: str, resume: bool = False, capture: str | None = None) -> list[str]:
    cmd = [mpremote_binary(), "connect", port]
    if resume:
        cmd.append("resume")
    cmd.append("repl")
    if capture:
        cmd += ["--capture", capture]
    return cmd


def register(subparsers) -> None:
    p = subparsers.add_parser("repl", help="open a board's REPL through mpremote",
                              description="Open the REPL of a board running MicroPython (Ctrl-] leaves).")
    p.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB0 or a vboard pty")
    p.add_argument("--resume", action="store_true",
                   help="do not soft-reset the board on connect (mpremote `resume`)")
    p.add_argument("--capture", default=None, metavar="FILE", help="also write the session to FILE")
    p.add_argument("--dry-run", action="store_true", help="print the mpremote invocation and exit")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    cmd = repl_command(args.port, resume=args.resume, capture=args.capture)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    print(f"repl: opening the REPL on {args.port} with mpremote (Ctrl-] to leave)", file=sys.stderr, flush=True)
    os.execv(cmd[0], cmd)
    return 127  # not reached
