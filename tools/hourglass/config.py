"""`hourglass config`: write the device agent's config.json, checked by the device's own rules.

The file goes into the board's build (build/<board>/fs/config.json, so `make deploy` puts it on the board) or to
--out. Members are given as KEY=VALUE (VALUE is JSON when it parses as JSON, else a string; dotted keys set a
member of an object: wifi.ssid=lab). Every member is checked with firmware/agent_config.py, the code the board
runs at boot: a member the board would refuse is an error here, not a warning there.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from hourglass.common import REPO, BuildLayout, UserError


def _agent_config():
    spec = importlib.util.spec_from_file_location("agent_config", REPO / "firmware" / "agent_config.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def register(subparsers) -> None:
    p = subparsers.add_parser("config", help="write the device agent's config.json (checked as the board checks it)",
                              description=__doc__)
    p.add_argument("--board", help="write build/<board>/fs/config.json (what `make deploy` puts on the board)")
    p.add_argument("--out", help="or write this file")
    p.add_argument("--show", action="store_true", help="print the resulting configuration (password masked)")
    p.add_argument("members", nargs="*", metavar="KEY=VALUE")
    p.set_defaults(func=run)


def build_config(members: list[str], base: dict | None = None) -> dict:
    """The user's members over `base`, each checked by the device's rules (UserError on the first bad one)."""
    user = dict(base or {})
    for item in members:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"{item!r} is not KEY=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        if "." in key:
            top, _, sub = key.partition(".")
            user.setdefault(top, {})
            if not isinstance(user[top], dict):
                raise UserError(f"{top} is not an object")
            user[top][sub] = value
        else:
            user[key] = value
    ac = _agent_config()
    problems: list[str] = []
    tmp = REPO / "build" / ".config-check.json"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps(user))
    try:
        ac.load(str(tmp), warn=problems.append)
    finally:
        tmp.unlink()
    if problems:
        raise UserError("; ".join(problems))
    return user


def run(args) -> int:
    if bool(args.board) == bool(args.out):
        raise UserError("give --board BOARD or --out FILE")
    out = Path(args.out) if args.out else BuildLayout(args.board).fs_dir / "config.json"
    if args.board and not out.parent.is_dir():
        raise UserError(f"no build for {args.board} (run `make build BOARD={args.board}` first)")
    base = json.loads(out.read_text()) if out.is_file() else {}
    cfg = build_config(args.members, base if isinstance(base, dict) else {})
    out.write_text(json.dumps(cfg, indent=1) + "\n")
    print(f"hourglass config: wrote {out}")
    if args.show:
        shown = json.loads(json.dumps(cfg))
        if isinstance(shown.get("wifi"), dict) and "password" in shown["wifi"]:
            shown["wifi"]["password"] = "***"
        print(json.dumps(shown, indent=1))
    return 0
