"""`hourglass suit serve|push|status|report`: the SUIT update server and its campaigns.

    hourglass suit serve --db fleet.db [--host H] [--port P] [--oscore CREDS.json [--require-oscore]]
    hourglass suit push NAME ENVELOPE --key K --payload NAME=FILE ... --device ID[=HOST:PORT] ... [--poll]
    hourglass suit status [NAME] [--watch]                        per-device progress (live bars with --watch)
    hourglass suit report [--device ID]                           the devices' reports

The server hosts, per campaign, the envelope at /suit/m/<campaign> (ETag: the manifest digest's first 8 bytes,
so a polling device's validation GET gets 2.03 while it is current) and each payload at
/suit/p/<campaign>/<name>, Block2 (RFC 7959) slices read from disk as they are asked for, never the whole file.
Devices post their outcome to /suit/report (CBOR: {1: device id, 2: seq, 3: ok, 4: reason, 5: message, 6: phase, 7:
SUIT report, 8: the device's own {phase: ms}, 9: the report's random id}); a device sends a report again until it is
answered, and one whose id the server has already is answered 2.04 and not recorded twice. A report the database
cannot take at once (busy) gets 5.03: the device keeps it and sends it again. A push campaign triggers each device
(POST the envelope to its /suit/trigger) and retries an unreachable one with exponential backoff; a poll campaign
only serves. The state - campaigns, targets with their progress and the moment each phase ended (trigger, download,
install, restart and confirmation: `status` shows the breakdown), reports - is SQLite (hourglass.suit_store); `push`
adds a campaign to the database the server reads, so the two can run as separate processes. Python: UpdateServer,
Campaigns.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import time
from pathlib import Path

from hourglass.common import UserError, sha256_file

log = logging.getLogger("hourglass.suit")

PROGRESS_INTERVAL = 0.25  # s between progress writes for one device
VALID, CONTENT, CHANGED = 67, 69, 68


def _etag(digest: bytes) -> bytes:
    return bytes(digest[:8])


def envelope_digest_seq(data: bytes) -> tuple[bytes, int]:
    """(manifest digest, sequence number) of an envelope, without checking its authentication."""
    import cbor2
    try:
        obj = cbor2.loads(data)
        env = obj.value if isinstance(obj, cbor2.CBORTag) else obj
        manifest_bstr = env[3]
        manifest = cbor2.loads(manifest_bstr)
        manifest = manifest.value if isinstance(manifest, cbor2.CBORTag) else manifest
        seq = manifest[2]
    except Exception as e:
        raise UserError(f"not a SUIT envelope: {e}") from None
    if not isinstance(seq, int) or not isinstance(manifest_bstr, bytes):
        raise UserError("not a SUIT envelope: no sequence number")
    return hashlib.sha256(cbor2.dumps(manifest_bstr)).digest(), seq


class Campaigns:
    """The operations of `hourglass suit push|status|report`, for Python callers and tests."""

    def __init__(self, store):
        self.store = store

    def push(self, name: str, envelope: bytes, key: dict, payloads: dict[str, str | Path],
             devices: dict[str, str | None], mode: str = "push") -> int:
        """Verify the envelope with key (a COSE_Key map), then store the campaign, its payload files and its
        devices ({id: "host:port" or None}). Raises UserError, and stores nothing, on any bad input."""
        import cbor2
        from hourglass import keys as hk
        from hourglass.suit import inspect_envelope
        if mode not in ("push", "poll"):
            raise UserError(f"mode is push or poll, not {mode}")
        if not devices:
            raise UserError("a campaign needs at least one device")
        if self.store.campaign(name) is not None:
            raise UserError(f"campaign {name} exists")
        _, ok = inspect_envelope(envelope, key)
        if not ok:
            raise UserError(f"campaign {name}: the envelope does not verify with the campaign's key")
        digest, seq = envelope_digest_seq(envelope)
        files = []
        for pname, path in payloads.items():
            p = Path(path)
            if not p.is_file():
                raise UserError(f"payload {pname}: no file {p}")
            files.append((pname, str(p.resolve()), p.stat().st_size, bytes.fromhex(sha256_file(p))))
        for dev, address in devices.items():
            if address is not None:
                host, _, port = address.rpartition(":")
                if not host or not port.isdigit():
                    raise UserError(f"device {dev}: address {address} is not HOST:PORT")
        public = key if key.get(1) == 4 else hk.public_of(key)
        return self.store.add_campaign(name, envelope, digest, seq, cbor2.dumps(public, canonical=True), mode,
                                       files, list(devices.items()))

    def status(self, name: str) -> list[dict]:
        c = self.store.campaign(name)
        if c is None:
            raise UserError(f"no campaign {name}")
        return self.store.targets(c["id"])

    def phases(self, name: str) -> list[dict]:
        """Per device: seconds of each phase of push to confirmed (suit_store.PHASES; None when a moment is
        missing) and the total from trigger to confirmation."""
        from hourglass.suit_store import PHASES
        out = []
        for t in self.status(name):
            row = {"device_id": t["device_id"]}
            for phase, start, end in PHASES:
                row[phase] = t[end] - t[start] if t[start] is not None and t[end] is not None else None
            ends = (t["triggered_at"], t["confirmed_at"])
            row["total"] = ends[1] - ends[0] if None not in ends else None
            out.append(row)
        return out

    def reports(self, device: str | None = None) -> list[dict]:
        if device is not None and self.store.device(device) is None:
            raise UserError(f"unknown device {device}")
        return self.store.reports(device)


class UpdateServer:
    """The CoAP side. store: suit_store.Store. Triggers pending push targets every `tick` s; an unreachable
    device is retried after backoff * 2**attempts s (at most max_backoff), `attempts` times in all.
    oscore: manifests, payloads and reports also through OSCORE (aiocoap's OscoreSiteWrapper)."""

    def __init__(self, store, host: str = "127.0.0.1", port: int = 5683, tick: float = 0.1,
                 backoff: float = 1.0, max_backoff: float = 60.0, attempts: int = 6,
                 oscore: dict | None = None, require_oscore: bool = False):
        self.store = store
        # OSCORE (RFC 8613) for the devices that have a context: aiocoap server credentials, as
        # CredentialsMap.load_from_dict takes them; require_oscore refuses unprotected requests (4.01)
        self.oscore, self.require_oscore = oscore, require_oscore
        self.host, self.port = host, port
        self.tick, self.backoff, self.max_backoff, self.attempts = tick, backoff, max_backoff, attempts
        self.ctx = None
        self._task = None
        self._progress_at: dict[str, float] = {}
        self.served_blocks = 0

    async def start(self) -> "UpdateServer":
        import aiocoap
        site = _make_site(self)
        if self.oscore is not None:
            from aiocoap.credentials import CredentialsMap
            from aiocoap.oscore_sitewrapper import OscoreSiteWrapper
            creds = CredentialsMap()
            creds.load_from_dict(self.oscore)
            site = OscoreSiteWrapper(site, creds)
        self.ctx = await aiocoap.Context.create_server_context(site, bind=(self.host, self.port))
        self._task = asyncio.create_task(self._push_loop())
        return self

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self.ctx:
            await self.ctx.shutdown()
        self.ctx = self._task = None

    # ---- push

    async def _push_loop(self) -> None:
        while True:
            for t in self.store.due_pushes(time.time()):
                self.store.update_target(t["campaign_id"], t["device_id"], state="triggered",
                                         attempts=t["attempts"] + 1, message="triggering")
                self.store.mark(t["campaign_id"], t["device_id"], "triggered_at")
                asyncio.create_task(self._trigger(t))
            await asyncio.sleep(self.tick)

    async def _trigger(self, t: dict) -> None:
        import aiocoap
        cid, dev, n = t["campaign_id"], t["device_id"], t["attempts"] + 1
        req = aiocoap.Message(code=aiocoap.POST, uri=f"coap://{t['address']}/suit/trigger",
                              payload=t["envelope"])
        # Size1 (RFC 7959 section 4): the device allocates the Block1 body once instead of growing it block by
        # block (each regrowth a copy, and the old pieces fragment a small heap)
        req.opt.size1 = len(t["envelope"])
        try:
            resp = await asyncio.wait_for(self.ctx.request(req).response, 30)
        except (OSError, asyncio.TimeoutError, aiocoap.error.Error) as e:
            if n >= self.attempts:
                self.store.update_target(cid, dev, state="unreachable", message=f"unreachable after {n} tries: {e}")
            else:
                delay = min(self.backoff * 2 ** (n - 1), self.max_backoff)
                self.store.update_target(cid, dev, state="pending", next_try=time.time() + delay,
                                         message=f"try {n} failed ({e or type(e).__name__}); next in {delay:g} s")
            return
        text = resp.payload.decode(errors="replace")
        if resp.code == aiocoap.CHANGED:
            self.store.update_target(cid, dev, state="fetching", message="triggered")
        elif resp.code == aiocoap.SERVICE_UNAVAILABLE and n < self.attempts:  # busy with another update
            delay = min(self.backoff * 2 ** (n - 1), self.max_backoff)
            self.store.update_target(cid, dev, state="pending", next_try=time.time() + delay,
                                     message=f"busy: {text}")
        else:
            self.store.update_target(cid, dev, state="failed", message=f"trigger refused: {resp.code} {text}")

    # ---- what the resources record

    def device_of(self, request) -> str | None:
        for q in request.opt.uri_query:
            if q.startswith("d="):
                return q[2:]
        return None

    def progress(self, campaign: dict, device: str, done: int, total: int, first: bool) -> None:
        if first or done >= total:
            t = self.store.target_for(device)
            if t is not None and t["campaign_id"] == campaign["id"]:
                if first:
                    self.store.mark(campaign["id"], device, "fetch_started", first=True)
                if done >= total:
                    self.store.mark(campaign["id"], device, "fetched_at")
        now = time.monotonic()
        last = self._progress_at.get(device, 0.0)
        if done < total and now - last < PROGRESS_INTERVAL:
            return
        self._progress_at[device] = now
        t = self.store.target_for(device)
        if t is None or t["campaign_id"] != campaign["id"] or t["state"] in ("confirmed", "failed"):
            return
        self.store.update_target(campaign["id"], device, state="fetching", bytes_done=done, bytes_total=total)


def _refuse_unprotected(server, request):
    from aiocoap import error
    from aiocoap.transports.oscore import OSCOREAddress
    if server.require_oscore and not isinstance(request.remote, OSCOREAddress):
        raise error.Unauthorized("OSCORE required")


def _campaign_and_rest(server, request):
    import aiocoap
    from aiocoap import error
    _refuse_unprotected(server, request)
    path = request.opt.uri_path
    if not path:
        raise error.NotFound()
    campaign = server.store.campaign(path[0])
    if campaign is None:
        raise error.NotFound()
    return campaign, path[1:], aiocoap


_REPORT_FIELDS = {1: bytes, 2: (int, type(None)), 3: bool, 4: int, 5: str, 6: str}
_PHASE_STATE = {"restart": "installed", "confirmed": "confirmed"}
_PHASE_MOMENT = {"installed": "installed_at", "confirmed": "confirmed_at"}


def _make_site(server):
    """The aiocoap Site: manifests, payloads, reports (aiocoap is imported only when a server starts)."""
    from aiocoap import resource

    class _Manifests(resource.Resource, resource.PathCapable):
        def __init__(self, server):
            super().__init__()
            self.server = server

        async def render_get(self, request):
            campaign, rest, aiocoap = _campaign_and_rest(self.server, request)
            if rest:
                raise aiocoap.error.NotFound()
            dev = self.server.device_of(request)
            if dev is not None and self.server.store.device(dev) is not None:
                self.server.store.seen(dev)
            etag = _etag(campaign["digest"])
            if etag in request.opt.etags:
                return aiocoap.Message(code=aiocoap.VALID, etag=etag)
            return aiocoap.Message(code=aiocoap.CONTENT, payload=campaign["envelope"], etag=etag)

    class _Payloads(resource.Resource, resource.PathCapable):
        def __init__(self, server):
            super().__init__()
            self.server = server

        async def needs_blockwise_assembly(self, request):
            return False  # Block2 slices come from disk here

        async def render_get(self, request):
            from aiocoap.optiontypes import BlockOption
            campaign, rest, aiocoap = _campaign_and_rest(self.server, request)
            if len(rest) != 1:
                raise aiocoap.error.NotFound()
            p = self.server.store.payload(campaign["name"], rest[0])
            if p is None:
                raise aiocoap.error.NotFound()
            b2 = request.opt.block2
            num, szx = (b2.block_number, b2.size_exponent) if b2 is not None else (0, 6)
            szx = min(szx, 6)
            bs = 16 << szx
            off = num * bs
            size = p["size"]
            if off >= size and size:
                return aiocoap.Message(code=aiocoap.BAD_OPTION, payload=b"block out of range")
            with open(p["path"], "rb") as f:
                f.seek(off)
                data = f.read(bs)
            more = off + len(data) < size
            self.server.served_blocks += 1
            dev = self.server.device_of(request)
            if dev is not None:
                self.server.progress(campaign, dev, off + len(data), size, num == 0)
            resp = aiocoap.Message(code=aiocoap.CONTENT, payload=data, etag=bytes(p["sha256"][:8]))
            resp.opt.block2 = BlockOption.BlockwiseTuple(num, more, szx)
            if num == 0 or request.opt.size2 is not None:
                resp.opt.size2 = size
            return resp

    class _Reports(resource.Resource):
        def __init__(self, server):
            super().__init__()
            self.server = server

        async def render_post(self, request):
            import aiocoap
            import cbor2
            _refuse_unprotected(self.server, request)
            try:
                body = cbor2.loads(request.payload)
            except Exception:
                return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=b"report is not CBOR")
            if not isinstance(body, dict) or any(not isinstance(body.get(k), t) for k, t in _REPORT_FIELDS.items()):
                shape = b"report must be {1: id, 2: seq, 3: ok, 4: reason, 5: message, 6: phase}"
                return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=shape)
            report = body.get(7)
            if report is not None and not isinstance(report, bytes):
                return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=b"report member 7 must be bytes")
            timing = body.get(8)
            if timing is not None and (not isinstance(timing, dict) or any(
                    not isinstance(k, str) or not isinstance(v, int) or isinstance(v, bool) or v < 0
                    for k, v in timing.items())):
                return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=b"report member 8 must be {phase: ms}")
            rid = body.get(9)
            if rid is not None and (not isinstance(rid, bytes) or len(rid) > 16):
                return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=b"report member 9 must be bytes (<= 16)")
            try:
                dev = body[1].decode()
            except UnicodeError:
                return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=b"device id is not UTF-8")
            # every report as it came (the remote, Message ID and token tell a resent one from a new one)
            log.info("report from %s MID %s token %s: device %s id %s seq %s %s %r", request.remote, request.mid,
                     request.token.hex(), dev, rid.hex() if rid else None, body[2], body[6], body[5])
            try:
                return self._record(dev, body, rid, report, timing)
            except sqlite3.OperationalError as e:  # the database is busy (locked): the device sends it again
                log.warning("report from %s not recorded: %s", dev, e)
                return aiocoap.Message(code=aiocoap.SERVICE_UNAVAILABLE, payload=b"busy: send the report again",
                                       max_age=1)

        def _record(self, dev, body, rid, report, timing):
            import aiocoap
            store = self.server.store
            if store.device(dev) is None:
                return aiocoap.Message(code=aiocoap.NOT_FOUND, payload=f"unknown device {dev}".encode())
            seq, ok, phase = body[2], body[3], body[6]
            t = store.target_for(dev, seq) if seq is not None else store.target_for(dev)
            store.seen(dev)
            if store.add_report(dev, t["campaign_id"] if t else None, seq, ok, body[4], body[5], phase, report,
                                json.dumps(timing) if timing else None, rid) is None:
                return aiocoap.Message(code=aiocoap.CHANGED)  # had it already: its answer was lost on the way
            if t is not None:
                if ok:
                    state = _PHASE_STATE.get(phase)
                    # a report sent again late (its first tries were not taken) tells an earlier phase: an
                    # update already over stays so
                    if state == "installed" and t["state"] in ("confirmed", "failed"):
                        state = None
                    if state:
                        fields = {"state": state, "message": body[5]}
                        if state == "confirmed" or t["bytes_total"]:
                            fields["bytes_done"] = t["bytes_total"]
                        store.update_target(t["campaign_id"], dev, **fields)
                        store.mark(t["campaign_id"], dev, _PHASE_MOMENT[state])
                else:
                    store.update_target(t["campaign_id"], dev, state="failed", message=body[5])
            return aiocoap.Message(code=aiocoap.CHANGED)

    site = resource.Site()
    site.add_resource(["suit", "m"], _Manifests(server))
    site.add_resource(["suit", "p"], _Payloads(server))
    site.add_resource(["suit", "report"], _Reports(server))
    return site


# ---- command line


def _store(args):
    from hourglass.suit_store import Store
    return Store(args.db)


def cmd_serve(args) -> int:
    store = _store(args)
    oscore = None
    if args.oscore:
        try:
            oscore = json.loads(Path(args.oscore).read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"--oscore {args.oscore}: {e}") from None

    async def run():
        srv = await UpdateServer(store, args.host, args.port, oscore=oscore,
                                 require_oscore=args.require_oscore).start()
        print(f"hourglass suit serve: coap://{args.host}:{args.port}/suit/ (database {args.db})", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await srv.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


def _pairs(items, what, need_value):
    out = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        if not name or (need_value and not value):
            raise UserError(f"{what} {item!r}: expected NAME={'VALUE' if need_value else '[HOST:PORT]'}")
        out[name] = value or None
    return out


def cmd_push(args) -> int:
    from hourglass.suit import _load_key
    try:
        envelope = Path(args.envelope).read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {args.envelope}: {e}") from None
    c = Campaigns(_store(args))
    cid = c.push(args.name, envelope, _load_key(args.key), _pairs(args.payload, "--payload", True),
                 _pairs(args.device, "--device", False), "poll" if args.poll else "push")
    print(f"campaign {args.name} (#{cid}): {len(args.device)} device(s), {'poll' if args.poll else 'push'}")
    if args.watch:
        return watch(c, args.name, args.timeout)
    return 0


def watch(campaigns: Campaigns, name: str, timeout: float) -> int:
    """Live per-device progress bars until every target is final (or timeout); 0 when all confirmed."""
    from tqdm import tqdm
    bars: dict[str, tqdm] = {}
    end = time.monotonic() + timeout
    rows = campaigns.status(name)
    while True:
        rows = campaigns.status(name)
        for r in rows:
            bar = bars.get(r["device_id"])
            if bar is None:
                bar = bars[r["device_id"]] = tqdm(total=r["bytes_total"] or None, desc=r["device_id"],
                                                  unit="B", unit_scale=True, position=len(bars), leave=True)
            if r["bytes_total"] and bar.total != r["bytes_total"]:
                bar.total = r["bytes_total"]
            bar.n = r["bytes_done"]
            bar.set_postfix_str(f"{r['state']} {r['message'][:40]}", refresh=True)
        if all(r["state"] in ("confirmed", "failed", "unreachable") for r in rows) or time.monotonic() > end:
            break
        time.sleep(0.2)
    for bar in bars.values():
        bar.close()
    return 0 if all(r["state"] == "confirmed" for r in rows) else 1


def cmd_status(args) -> int:
    c = Campaigns(_store(args))
    names = [args.name] if args.name else [x["name"] for x in c.store.campaigns()]
    if args.watch:
        if not args.name:
            raise UserError("--watch needs a campaign name")
        return watch(c, args.name, args.timeout)
    for name in names:
        print(f"campaign {name}")
        for r in c.status(name):
            pct = f"{100 * r['bytes_done'] // r['bytes_total']:3d}%" if r["bytes_total"] else "   -"
            print(f"  {r['device_id']:<16} {r['state']:<12} {pct} {r['message']}")
        for p in c.phases(name):
            parts = [f"{k} {p[k]:.2f} s" for k in p if k != "device_id" and p[k] is not None]
            if parts:
                print(f"  {p['device_id']:<16} " + ", ".join(parts))
    return 0


def cmd_report(args) -> int:
    c = Campaigns(_store(args))
    for r in c.reports(args.device):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["received"]))
        timing = "".join(f", {k} {v} ms" for k, v in json.loads(r["timing"]).items()) if r["timing"] else ""
        print(f"{when} {r['device_id']} seq {r['seq']} {'ok' if r['ok'] else 'FAILED'} "
              f"[{r['phase']}] reason {r['reason']}: {r['message']}{timing}")
    return 0


def register(sp) -> None:
    """Adds serve, push, status and report to `hourglass suit`'s subparsers."""
    def db(p):
        p.add_argument("--db", default="suit-server.db", help="the server's SQLite database")
    s = sp.add_parser("serve", help="the update server (CoAP, aiocoap)")
    db(s)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=5683)
    s.add_argument("--oscore", metavar="JSON", help="OSCORE server credentials (aiocoap's credentials map)")
    s.add_argument("--require-oscore", action="store_true", help="refuse requests not protected with OSCORE")
    s.set_defaults(func=cmd_serve)
    p = sp.add_parser("push", help="start a campaign: an envelope for some devices")
    db(p)
    p.add_argument("name")
    p.add_argument("envelope")
    p.add_argument("-k", "--key", required=True, help="the campaign's COSE_Key: the envelope must verify with it")
    p.add_argument("--payload", action="append", metavar="NAME=FILE", help="served at /suit/p/CAMPAIGN/NAME")
    p.add_argument("--device", action="append", required=True, metavar="ID[=HOST:PORT]",
                   help="a target; with an address it is triggered (push)")
    p.add_argument("--poll", action="store_true", help="do not trigger: the devices poll /suit/m/CAMPAIGN")
    p.add_argument("--watch", action="store_true", help="show live progress until every device is done")
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(func=cmd_push)
    st = sp.add_parser("status", help="per-device progress of a campaign")
    db(st)
    st.add_argument("name", nargs="?")
    st.add_argument("--watch", action="store_true")
    st.add_argument("--timeout", type=float, default=600)
    st.set_defaults(func=cmd_status)
    r = sp.add_parser("report", help="the devices' reports")
    db(r)
    r.add_argument("--device")
    r.set_defaults(func=cmd_report)
