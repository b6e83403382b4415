# SUIT over the air on the device: the update client on the board's one CoAP endpoint.
#
#   up = Updater(ep, make_processor, store, b"dev-1", ("192.0.2.1", 5683), FileSpool("/flash"))
#   up.serve()                      # /suit/trigger (push) and /suit/state on the endpoint
#   await up.boot(health)           # first boot after an update: health check, confirm or roll back
#   asyncio.create_task(up.poll_forever("/suit/m/app", 3600_000))   # or poll
#
# An update runs in the background: the envelope is authenticated (the trigger answers 2.04 only then), every
# payload URI its payload-fetch/install sequences name is downloaded block by block (Block2, RFC 7959) into a
# spool - a file, or straight into the next ESP32 OTA partition - resuming from the last good block when the
# ETag is the same, then the processor runs with a driver that reads the spool, so the digest is computed over
# the bytes as they are stored. After the commit the board restarts into the new image (OTA: set_boot, hard
# reset; bundle: soft reset) and boot() decides with the app's health check: confirm
# (mark_app_valid_cancel_rollback, or drop the bundle's old files) or undo (the bootloader rolls the image back;
# the bundle's old files are put back). Each outcome is reported to the server (POST /suit/report, CBOR).
#
# Heap: the steady state holds this module and the endpoint only. The processor (with COSE, the verify
# algorithms and the driver) is made by make_processor() when an update runs and every module that run
# imported is released after it; the spools are in suit.spool, the boot verdict in suit.ota_boot.
import asyncio
import os

import cbor
from coap.msg import Message
from suit import SuitError, const

_GET = const(1)
_POST = const(2)
_CONTENT = const(69)
_CHANGED = const(68)
_VALID = const(67)
_ETAG = const(4)

# stored records (lib/store names)
_DL = "suit-dl"          # [envelope digest, uri, etag, bytes stored]: where a download resumes
_PENDING = "suit-pend"   # {0: kind, 1: seq, 2: digest, 3: slot label, 4: phase}: an update not yet confirmed
_STATE = "suit-state"    # {component name: [digest, seq]}: what runs, confirmed
_LAST = "suit-last"      # the last outcome: {1: seq, 2: ok, 3: reason, 4: message}
_SEQ_COMPONENT = "manifest"

# phases (/suit/state key 6)
IDLE = "idle"
FETCH = "fetch"
INSTALL = "install"
RESTART = "restart"


class UpdateError(Exception):
    """A transfer failed for good (after the retries)."""


def _release(*names):
    import sys
    for name in names:
        sys.modules.pop(name, None)
        dot = name.rfind(".")
        parent = sys.modules.get(name[:dot]) if dot > 0 else None
        if parent is not None and name[dot + 1:] in parent.__dict__:
            delattr(parent, name[dot + 1:])


async def _sleep_ms(ms):
    await asyncio.sleep(ms / 1000)


class Updater:
    """ep: the board's coap Endpoint; make_processor(): a suit.processor.Processor whose driver is the
    platform's (suit.bundle.BundleDriver or suit.esp32ota.OtaDriver), made when an update runs;
    store: the lib/store FileStore the processor keeps its sequence number in; device_id: bytes;
    server: the update server's remote (host, port), or coap.serial.REMOTE through the gateway;
    spool: FileSpool or PartitionSpool; kind: "bundle" (soft reset) or "ota" (set_boot, hard reset);
    anchors(): the trust anchors, to authenticate a trigger without making a processor (optional);
    szx: Block2 size exponent (16 << szx bytes per block; default the endpoint's); retries: attempts per
    block; restart(kind): how the board restarts ("soft" or "hard"; default machine.soft_reset/reset)."""

    def __init__(self, ep, make_processor, store, device_id, server, spool, kind="bundle", szx=None, retries=8,
                 backoff_ms=500, restart=None, max_envelope=8192, on_phase=None, seq_name="suit-seq", anchors=None):
        self.ep = ep
        self.anchors = anchors
        self.make_processor = make_processor
        self.seq_name = seq_name
        self.store = store
        self.device_id = device_id
        self.server = server
        self.spool = spool
        self.kind = kind
        self.szx = ep.szx if szx is None else szx
        self.retries = retries
        self.backoff_ms = backoff_ms
        self.restart = restart or _restart
        self.max_envelope = max_envelope
        self.on_phase = on_phase
        self.phase = IDLE
        self.done = 0
        self.total = 0
        self.task = None
        self.etag = None  # the polled manifest's
        self._resident = ()

    # ---------------------------------------------------------------- resources

    def release(self):
        """Drop every module imported since serve() (an update's processor, COSE, crypto, drivers)."""
        import sys
        import gc
        if sys.implementation.name == "micropython":  # (CPython has the memory, and its imports may be shared)
            _release(*[n for n in list(sys.modules) if n not in self._resident])
        gc.collect()

    def serve(self):
        import sys
        self._resident = set(sys.modules)
        self.ep.route("/suit/trigger", post=self._trigger, max_body=self.max_envelope)
        self.ep.route("/suit/state", get=self._state)
        return self

    def set_phase(self, phase):
        self.phase = phase
        if self.on_phase is not None:
            self.on_phase(phase)

    def _trigger(self, req):
        if self.task is not None:
            return Message(code=163, payload=b"busy: an update is running")  # 5.03
        data = bytes(req.payload)
        if not data:
            return Message(code=128, payload=b"an envelope or a manifest URI")
        if data[0] != 0xD8 and data[0] >> 5 != 5:  # neither tag 107 nor a map: a manifest URI (text)
            try:
                uri = data.decode()
            except UnicodeError:
                return Message(code=128, payload=b"neither an envelope nor a URI")
            self.start_uri(uri)
            return Message(code=_CHANGED)
        try:
            info = self.check(data)
        except SuitError as e:
            self.release()
            return Message(code=129 if e.reason == 4 else 128, payload=str(e).encode())
        except MemoryError:
            self.release()
            return Message(code=160, payload=b"out of memory")
        self.task = asyncio.create_task(self._run(data, info))
        return Message(code=_CHANGED)

    def _state(self, req):
        return Message(code=_CONTENT, payload=cbor.dumps(self.state())).add(12, 60)  # application/cbor

    def state(self):
        """The /suit/state map: 1 components {name: [digest, seq]}, 2 active slot, 3 inactive slot,
        4 last outcome, 5 [bytes done, total] during an update, 6 phase, 7 stored sequence number."""
        st = self.store.get(_STATE)
        last = self.store.get(_LAST)
        s = {1: cbor.loads(st) if st else {}, 4: cbor.loads(last) if last else None, 6: self.phase,
             7: self.stored_sequence_number()}
        if self.kind == "ota":
            run = self.spool.running
            s[2] = run.info()[4]
            s[3] = run.get_next_update().info()[4]
        if self.phase != IDLE:
            s[5] = [self.done, self.total]
        return s

    # ---------------------------------------------------------------- the update

    def stored_sequence_number(self):
        """The processor's anti-rollback record (8 bytes, big-endian, under seq_name), read without it."""
        b = self.store.get(self.seq_name)
        return int.from_bytes(b, "big") if b else None

    def processor(self):
        """A processor for one run; the caller drops it (and _released() its modules) afterwards."""
        return self.make_processor()

    def check(self, data):
        """Authenticate an envelope; returns (digest, seq, uris) or raises SuitError (suit.ota_run.check)."""
        from suit.ota_run import check
        return check(self, data)

    def start_uri(self, uri):
        """Update in the background from the envelope at a manifest URI (False: an update is running)."""
        if self.task is not None:
            return False
        self.task = asyncio.create_task(self._run_uri(uri))
        return True

    async def _run_uri(self, uri):
        try:
            remote, path = self._resolve(uri)
            r = await self.ep.request(_GET, remote, path, szx=self.szx)
            if r.code != _CONTENT:
                raise UpdateError("manifest %s: %d.%02d" % (uri, r.code >> 5, r.code & 31))
            data = bytes(r.payload)
            info = self.check(data)
        except Exception as e:
            self.task = None
            self.release()
            await self.report(None, False, 11, str(e), None)
            return
        await self._run(data, info)

    async def _run(self, data, info):
        digest, seq, uris = info
        try:
            from suit.ota_run import update
            ok = await update(self, data, digest, seq, uris)
        except Exception as e:  # never an unhandled task: report it
            ok = False
            await self.report(seq, False, 11, "%s: %s" % (type(e).__name__, e), None)
        self.task = None
        self.release()
        self.set_phase(IDLE)
        if ok:
            self.set_phase(RESTART)
            await _sleep_ms(50)  # the report's ACK goes out before the restart
            self.restart("hard" if self.kind == "ota" else "soft")

    def _resolve(self, uri):
        """coap://host:port/path -> (remote, path); every request goes to `server` (the gateway on serial)."""
        if uri.startswith("coap://"):
            rest = uri[7:]
            i = rest.find("/")
            path = rest[i:] if i >= 0 else "/"
        elif uri.startswith("/"):
            path = uri
        else:
            raise UpdateError("unsupported URI %s" % uri)
        return self.server, path

    # ---------------------------------------------------------------- reports

    async def report(self, seq, ok, reason, message, report, phase=None):
        try:
            self.store.put(_LAST, cbor.dumps({1: seq, 2: ok, 3: reason, 4: message}))
        except OSError:  # a full filesystem must not keep the report from the server
            pass
        body = {1: self.device_id, 2: seq, 3: ok, 4: reason, 5: message, 6: phase or (IDLE if ok else "failed")}
        if report is not None:
            body[7] = report
        for i in range(3):
            try:
                r = await self.ep.request(_POST, self.server, "/suit/report", cbor.dumps(body))
                if r.code < 128:
                    return True
                return False
            except Exception as e:
                if isinstance(e, MemoryError):
                    return False
                await _sleep_ms(self.backoff_ms << i)
        return False

    # ---------------------------------------------------------------- poll

    async def poll_once(self, path):
        """GET the manifest (If-None-Match the last ETag); update when its sequence number is newer.
        Returns "same", "old", "updating" or an error text."""
        if self.task is not None:
            return "busy"
        opts = ()
        if self.etag is not None:
            opts = ((_ETAG, self.etag),)  # a validation request (RFC 7252 5.10.6.1): 2.03 when unchanged
        path = path + ("&" if "?" in path else "?") + "d=" + self.device_id.decode()
        r = await self.ep.request(_GET, self.server, path, options=opts, szx=self.szx)
        if r.code == _VALID:
            return "same"
        if r.code != _CONTENT:
            return "%d.%02d" % (r.code >> 5, r.code & 31)
        et = r.opt(_ETAG)
        self.etag = bytes(et) if et is not None else None
        data = bytes(r.payload)
        try:
            info = self.check(data)
        except SuitError as e:
            self.release()
            if e.reason == 4 and "not newer" in e.args[0]:
                return "old"
            await self.report(None, False, e.reason, str(e), None)
            return str(e)
        self.task = asyncio.create_task(self._run(data, info))
        return "updating"

    async def poll_forever(self, path, interval_ms, jitter_ms=None):
        """Poll every interval_ms plus a random 0..jitter_ms (default interval/10), so a fleet spreads out."""
        if jitter_ms is None:
            jitter_ms = interval_ms // 10
        while True:
            try:
                await self.poll_once(path)
            except Exception as e:
                if isinstance(e, MemoryError):
                    import gc
                    gc.collect()
            j = int.from_bytes(os.urandom(2), "big") * jitter_ms // 65536 if jitter_ms else 0
            await _sleep_ms(interval_ms + j)

    # ---------------------------------------------------------------- boot: confirm or undo

    async def boot(self, health, deadline_ms=30000):
        """At every boot, before anything else touches the update state. health: an async callable -> bool
        (the app's services started and the update server answers). Returns None (nothing pending),
        "confirmed", "rolled back" or "restored" (the last two were reported as failures). The code lives
        in suit.ota_boot, imported only when an update waits for its verdict."""
        if self.store.get(_PENDING) is None:
            if self.spool.interrupted():  # a power cut in a commit: the processor finishes or undoes it
                self.processor().recover()
                self.release()
            return None
        from suit.ota_boot import boot
        try:
            return await boot(self, health, deadline_ms)
        finally:
            self.release()


def _restart(kind):
    import machine
    if kind == "hard":
        machine.reset()
    else:
        machine.soft_reset()
