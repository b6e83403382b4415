"""`hourglass noob`: the EAP-NOOB server and CoAP-EAP controller (`serve`), and the CLI equivalents of its OOB
web page (`list`, `show`, `oob`, `forget`), all on one SQLite database in the state folder."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hourglass.common import UserError

DEFAULT_STATE = "noob-state"


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text}") from None


def register(subparsers) -> None:
    p = subparsers.add_parser("noob", help="EAP-NOOB server and CoAP-EAP controller: serve, list, show, oob, forget",
                              description=__doc__)
    p.add_argument("--state", default=DEFAULT_STATE, help=f"state folder with noob.sqlite (default {DEFAULT_STATE})")
    sub = p.add_subparsers(dest="noob_command", metavar="ACTION", required=True)
    s = sub.add_parser("serve", help="run the controller (CoAP) and the OOB web page (HTTP)")
    s.add_argument("--coap", type=_hostport, default=("127.0.0.1", 5683), help="CoAP bind HOST:PORT")
    s.add_argument("--http", type=_hostport, default=("127.0.0.1", 8080),
                   help="web page bind HOST:PORT (127.0.0.1 by default: anything else is your explicit choice)")
    s.add_argument("--server-url", help="the https URL users reach the page at (the device puts it before its OOB "
                   "message, RFC 9140 ServerURL)")
    s.add_argument("--name", default="Hourglass", help="ServerName in ServerInfo")
    s.add_argument("--lifetime", type=int, default=3600, help="OSCORE session lifetime in seconds (0: none)")
    s.add_argument("--sleep-time", type=int, default=60, help="SleepTime sent to devices waiting for OOB")
    s.set_defaults(func=serve)
    sub.add_parser("list", help="every device and its state").set_defaults(func=list_peers)
    sh = sub.add_parser("show", help="one device: state, session, history (nothing secret)")
    sh.add_argument("peer")
    sh.set_defaults(func=show)
    o = sub.add_parser("oob", help="a server-to-peer OOB message for PEER, or --accept a peer-to-server one")
    o.add_argument("peer", nargs="?")
    o.add_argument("--accept", metavar="TEXT", help="the OOB message or URL the device shows")
    o.set_defaults(func=oob)
    f = sub.add_parser("forget", help="forget a device (it must bootstrap again)")
    f.add_argument("peer")
    f.set_defaults(func=forget)
    p.set_defaults(func=lambda args: 2)


def _db(args):
    from hourglass.noob_db import Database
    d = Path(args.state)
    if args.noob_command != "serve" and not (d / "noob.sqlite").exists():
        raise UserError(f"no server state in {d} (run `hourglass noob serve` first, or give --state)")
    d.mkdir(parents=True, exist_ok=True)
    return Database(d / "noob.sqlite")


def _server(db, **kw):
    from hourglass.noob_server import NoobServer
    info = db.config("server_info")
    if info is None:
        raise UserError("the database has no ServerInfo yet (run `hourglass noob serve` once)")
    return NoobServer(info, registry=db, **kw)


def serve(args) -> int:
    import asyncio

    from hourglass.noob_controller import Controller
    from hourglass.noob_web import NoobWeb
    db = _db(args)
    info = {"Type": "hourglass", "ServerName": args.name}
    if args.server_url:
        if not args.server_url.startswith("https://"):
            raise UserError("--server-url must be an https URL (devices ignore any other)")
        info["ServerURL"] = args.server_url
    db.set_config("server_info", json.dumps(info, separators=(",", ":")))
    server = _server(db, sleep_time=args.sleep_time)

    async def main() -> None:
        controller = Controller(server, db, Path(args.state), lifetime=args.lifetime)
        await controller.start(args.coap)
        page = NoobWeb(server, db, args.server_url)
        port = await page.start(*args.http)
        print(f"hourglass noob: CoAP-EAP on coap://{args.coap[0]}:{args.coap[1]}/.well-known/coap-eap, "
              f"OOB page on http://{args.http[0]}:{port}/", flush=True)
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            await page.close()
            await controller.close()

    try:
        asyncio.run(main())
    except OSError as e:
        raise UserError(str(e)) from None
    return 0


def list_peers(args) -> int:
    peers = _db(args).peers()
    if not peers:
        print("no devices")
    for p in peers:
        print(f'{p["peer_id"]}  {p["state_name"]:<16} {"OSCORE" if p["session"] else "-":<7}{p["address"] or ""}')
    return 0


def show(args) -> int:
    db = _db(args)
    p = next((p for p in db.peers() if p["peer_id"] == args.peer), None)
    if p is None:
        raise UserError(f"no device {args.peer}")
    print(f'PeerId    {p["peer_id"]}\nState     {p["state_name"]}\nAddress   {p["address"] or "-"}\n'
          f'PeerInfo  {p["peer_info"]}')
    s = db.session(args.peer)
    if s:
        until = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s["expires"])) if s["expires"] else "no lifetime"
        print(f'Session   OSCORE, cipher suite {s["suite"]}, RID-C {s["rid_c"].hex()}, RID-I {s["rid_i"].hex()}, '
              f"until {until}")
    for e in db.history(args.peer):
        print(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["at"])), e["event"])
    return 0


def oob(args) -> int:
    from hourglass.noob_server import NoobError
    server = _server(_db(args))
    if args.accept:
        if not server.accept_oob(args.accept):
            raise UserError("OOB message not accepted (unknown device, wrong or expired code)")
        print("accepted: the device completes its registration when it next connects")
        return 0
    if not args.peer:
        raise UserError("give PEER (to make a server-to-peer OOB message) or --accept TEXT")
    try:
        print(server.make_oob(args.peer))
    except NoobError as e:
        raise UserError(e.info) from None
    return 0


def forget(args) -> int:
    db = _db(args)
    if db.get(args.peer) is None:
        raise UserError(f"no device {args.peer}")
    db.delete(args.peer)
    print(f"forgot {args.peer}")
    return 0
