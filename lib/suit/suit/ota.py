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
from coap import block as _block
from suit import SuitError, const

_CON = const(0)
_GET = const(1)
_POST = const(2)
_CONTENT = const(69)
_CHANGED = const(68)
_VALID = const(67)
_ETAG = const(4)
_BLOCK2 = const(23)
_SIZE2 = const(28)

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


def payload_uris(manifest):
    """The remote payload URIs (and their image-size, or None) a Manifest's sequences set, in order."""
    out = []
    for seq in (manifest.shared, manifest.sequences.get(16), manifest.sequences.get(20)):
        if seq is not None:
            _scan(seq, out, 0)
    return [u for u in out if not u[0].startswith("#")]


def _scan(seq, out, depth):
    if depth > 6:
        raise SuitError(1, "command sequences nested too deep")
    d = cbor.Decoder(seq)
    n = d.read_array_header() or 0
    size = None
    for _ in range(n // 2):
        cmd = d.read_int()
        if cmd in (19, 20):  # set/override-parameters
            for _ in range(d.read_map_header() or 0):
                key = d.read_int()
                if key == 21:
                    out.append([d.read_text(), size])
                elif key == 14:
                    size = d.read_uint()
                    for u in out:
                        if u[1] is None:
                            u[1] = size
                else:
                    d.skip()
        elif cmd == 15:  # try-each
            for _ in range(d.read_array_header() or 0):
                if d.peek_major() == 2:
                    _scan(d.read_bytes(), out, depth + 1)
                else:
                    d.skip()
        elif cmd == 32:  # run-sequence
            _scan(d.read_bytes(), out, depth + 1)
        else:
            d.skip()
    seen = []
    for u in out:  # one download per URI
        if u[0] not in [s[0] for s in seen]:
            seen.append(u)
    out[:] = seen


def _release(*names):
    import sys
    for name in names:
        sys.modules.pop(name, None)
        dot = name.rfind(".")
        parent = sys.modules.get(name[:dot]) if dot > 0 else None
        if parent is not None and name[dot + 1:] in parent.__dict__:
            delattr(parent, name[dot + 1:])


class _Counting:
    # The staged writer of an in-place spool: the bytes are already where they belong; check the size only.
    def __init__(self):
        self.size = 0

    def write(self, data):
        self.size += len(data)

    def close(self):
        pass


class _SpoolDriver:
    """The platform driver as the processor sees it during an OTA run: fetch() reads the spool, and finish()
    waits for the health check when keep_old (the bundle's old files stay until confirmation)."""

    def __init__(self, inner, spool, uris, keep_old):
        self.inner = inner
        self.spool = spool
        self.uris = uris
        self.keep_old = keep_old

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def fetch(self, uri):
        for i, u in enumerate(self.uris):
            if u[0] == uri:
                return self.spool.reader(i, u[2])
        raise OSError("%s was not downloaded" % uri)

    def stage(self, cid, slot, size):
        w = self.inner.stage(cid, slot, size)
        if self.spool.in_place:
            return _Counting()  # the inner writer is never written: the image is in its slot already
        return w

    def finish(self):
        if not self.keep_old:
            self.inner.finish()


# ---------------------------------------------------------------------------------------------- updater

async def _sleep_ms(ms):
    await asyncio.sleep(ms / 1000)


class Updater:
    """ep: the board's coap Endpoint; make_processor(): a suit.processor.Processor whose driver is the
    platform's (suit.bundle.BundleDriver or suit.esp32ota.OtaDriver), made when an update runs;
    store: the lib/store FileStore the processor keeps its sequence number in; device_id: bytes;
    server: the update server's remote (host, port), or coap.serial.REMOTE through the gateway;
    spool: FileSpool or PartitionSpool; kind: "bundle" (soft reset) or "ota" (set_boot, hard reset);
    szx: Block2 size exponent (16 << szx bytes per block; default the endpoint's); retries: attempts per
    block; restart(kind): how the board restarts ("soft" or "hard"; default machine.soft_reset/reset)."""

    def __init__(self, ep, make_processor, store, device_id, server, spool, kind="bundle", szx=None, retries=8,
                 backoff_ms=500, restart=None, max_envelope=8192, on_phase=None, seq_name="suit-seq"):
        self.ep = ep
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

    def _set_phase(self, phase):
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
        """Authenticate an envelope; returns (digest, seq, uris) or raises SuitError. The processor made for
        it is dropped with its modules: the download does not need them (the install makes a new one)."""
        from suit.envelope import Envelope, Manifest
        try:
            p = self.processor()
            env = Envelope(data, self.max_envelope)
            digest = bytes(env.authenticate(p.trust_anchors))
            m = Manifest(env, p.max_components)
            seq = m.sequence_number
            uris = payload_uris(m)
        finally:
            p = env = m = None
            self.release()
        stored = self.stored_sequence_number()
        if stored is not None and seq <= stored:
            raise SuitError(4, "sequence number %d is not newer than the installed %d" % (seq, stored))
        return digest, seq, uris

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
            ok = await self._update(data, digest, seq, uris)
        except Exception as e:  # never an unhandled task: report it
            ok = False
            await self.report(seq, False, 11, "%s: %s" % (type(e).__name__, e), None)
        self.task = None
        self.release()
        self._set_phase(IDLE)
        if ok:
            self._set_phase(RESTART)
            await _sleep_ms(50)  # the report's ACK goes out before the restart
            self.restart("hard" if self.kind == "ota" else "soft")

    async def _update(self, data, digest, seq, uris):
        self._set_phase(FETCH)
        self.total = sum(u[1] or 0 for u in uris)
        self.done = 0
        rec = self.store.get(_DL)
        rec = cbor.loads(rec) if rec else None
        if rec is None or rec[0] != digest:
            self.spool.clear()
            rec = [digest, 0, None, 0]  # [digest, uri index, etag, bytes stored]
        base = 0
        for i, u in enumerate(uris):
            if i < rec[1]:
                base += u[1] or 0
                u.append(u[1])
                continue
            start = rec[3] if i == rec[1] else 0
            etag = rec[2] if i == rec[1] else None
            size = await self._download(i, u[0], start, etag, rec, base)
            u.append(size)
            base += size
        self._set_phase(INSTALL)
        pending = {0: self.kind, 1: seq, 2: digest, 4: INSTALL}
        if self.kind == "ota":
            pending[3] = self.spool.running.get_next_update().info()[4]
        self.store.put(_PENDING, cbor.dumps(pending))
        p = self.processor()
        p.driver = _SpoolDriver(p.driver, self.spool, uris, self.kind == "bundle")
        res = p.update(data)
        p = None
        self.store.delete(_DL)
        if not res.ok:
            self.store.delete(_PENDING)
            self.spool.clear()
            await self.report(seq, False, res.reason, res.message, res.report)
            return False
        pending[4] = RESTART
        self.store.put(_PENDING, cbor.dumps(pending))
        self.spool.clear()
        await self.report(seq, True, 0, "installed; restarting", res.report, phase=RESTART)
        return True

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

    async def _download(self, index, uri, start, etag, rec, base):
        """Block2 download of uri into the spool from byte `start`; returns the size."""
        remote, path = self._resolve(uri)
        path += ("&" if "?" in path else "?") + "d=" + self.device_id.decode()
        szx = self.szx
        bs = 16 << szx
        offset = self.spool.resume_at(index, start, bs)
        if offset == 0:
            etag = None
        w = self.spool.writer(index, offset)
        last_saved = offset
        failures = 0
        try:
            while True:
                num = offset >> (szx + 4)
                m = Message(_CON, _GET, 0, os.urandom(4)).set_path(path)
                m.add(_BLOCK2, _block.encode(num, 0, szx))
                try:
                    r = await self.ep.exchange(m, remote)
                except Exception as e:  # the server went away or the link lost the request and retries
                    if isinstance(e, MemoryError):
                        raise
                    failures += 1
                    if failures > self.retries:
                        raise UpdateError("%s: no answer after %d tries (%s)" % (uri, failures, e))
                    await _sleep_ms(min(self.backoff_ms << min(failures - 1, 6), 30000))
                    continue
                failures = 0
                if r.code != _CONTENT:
                    raise UpdateError("%s: %d.%02d" % (uri, r.code >> 5, r.code & 31))
                b2 = r.opt(_BLOCK2)
                payload = r.payload
                if b2 is None:
                    if offset:
                        raise UpdateError("%s: the server stopped answering in blocks" % uri)
                    n, more, s = 0, 0, szx
                else:
                    n, more, s = _block.decode(b2)
                et = r.opt(_ETAG)
                et = bytes(et) if et is not None else None
                if etag is None and offset == 0:
                    etag = et
                elif et != etag:
                    # a different payload now: start over
                    w.close()
                    offset = 0
                    etag = None
                    w = self.spool.writer(index, 0)
                    continue
                if s < szx:  # the server wants smaller blocks
                    szx = s
                if n << (s + 4) != offset or len(payload) > (16 << s) or (more and len(payload) != 16 << s):
                    raise UpdateError("%s: block %d does not continue at %d" % (uri, n, offset))
                if offset == 0:
                    size2 = r.uint(_SIZE2)
                    if size2 is not None and index == 0 and self.total == 0:
                        self.total = size2
                w.write(payload)
                offset += len(payload)
                self.done = base + offset
                if not more:
                    break
                if offset - last_saved >= 16384:
                    stored = w.flush()
                    rec[1], rec[2], rec[3] = index, etag, stored
                    self.store.put(_DL, cbor.dumps(rec))
                    last_saved = offset
        finally:
            w.close()
        rec[1], rec[2], rec[3] = index + 1, None, 0
        self.store.put(_DL, cbor.dumps(rec))
        return offset

    # ---------------------------------------------------------------- reports

    async def report(self, seq, ok, reason, message, report, phase=None):
        last = {1: seq, 2: ok, 3: reason, 4: message}
        self.store.put(_LAST, cbor.dumps(last))
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
