# One update run of suit.ota.Updater: authenticate the envelope and find its payload URIs, download each
# (Block2, resuming from the last good block while the ETag is the same) into the spool, then install with
# the processor reading the spool. Imported per run and released after it (Updater.release), so a board's
# steady state does not hold it.
import os

import cbor
from coap import block as _block
from coap.msg import Message
from suit import SuitError, const
from suit.ota import _DL, _PENDING, FETCH, INSTALL, RESTART, UpdateError, _sleep_ms

_CON = const(0)
_GET = const(1)
_CONTENT = const(69)
_ETAG = const(4)
_BLOCK2 = const(23)
_SIZE2 = const(28)


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


def check(up, data):
    """Authenticate an envelope; returns (digest, seq, uris) or raises SuitError. The processor made for
    it is dropped with its modules: the download does not need them (the install makes a new one)."""
    from suit.envelope import Envelope, Manifest
    try:
        if up.anchors is not None:  # the trust anchors alone: far less heap than a whole processor
            p = None
            anchors = up.anchors()
        else:
            p = up.processor()
            anchors = p.trust_anchors
        env = Envelope(data, up.max_envelope)
        digest = bytes(env.authenticate(anchors))
        m = Manifest(env, p.max_components if p else 8)
        seq = m.sequence_number
        uris = payload_uris(m)
    finally:
        p = env = m = anchors = None
        up.release()
    stored = up.stored_sequence_number()
    if stored is not None and seq <= stored:
        raise SuitError(4, "sequence number %d is not newer than the installed %d" % (seq, stored))
    return digest, seq, uris


async def update(up, data, digest, seq, uris):
    up.set_phase(FETCH)
    up.total = sum(u[1] or 0 for u in uris)
    up.done = 0
    rec = up.store.get(_DL)
    rec = cbor.loads(rec) if rec else None
    if rec is None or rec[0] != digest:
        up.spool.clear()
        rec = [digest, 0, None, 0]  # [digest, uri index, etag, bytes stored]
    base = 0
    for i, u in enumerate(uris):
        if i < rec[1]:
            base += u[1] or 0
            u.append(u[1])
            continue
        start = rec[3] if i == rec[1] else 0
        etag = rec[2] if i == rec[1] else None
        size = await download(up, i, u[0], start, etag, rec, base)
        u.append(size)
        base += size
    up.set_phase(INSTALL)
    pending = {0: up.kind, 1: seq, 2: digest, 4: INSTALL}
    if up.kind == "ota":
        pending[3] = up.spool.running.get_next_update().info()[4]
    up.store.put(_PENDING, cbor.dumps(pending))
    p = up.processor()
    p.driver = _SpoolDriver(p.driver, up.spool, uris, up.kind == "bundle")
    res = p.update(data)
    p = None
    up.store.delete(_DL)
    if not res.ok:
        up.store.delete(_PENDING)
        up.spool.clear()
        await up.report(seq, False, res.reason, res.message, res.report)
        return False
    pending[4] = RESTART
    up.store.put(_PENDING, cbor.dumps(pending))
    up.spool.clear()
    await up.report(seq, True, 0, "installed; restarting", res.report, phase=RESTART)
    return True


async def download(up, index, uri, start, etag, rec, base):
    """Block2 download of uri into the spool from byte `start`; returns the size."""
    remote, path = up._resolve(uri)
    path += ("&" if "?" in path else "?") + "d=" + up.device_id.decode()
    szx = up.szx
    bs = 16 << szx
    offset = up.spool.resume_at(index, start, bs)
    if offset == 0:
        etag = None
    w = up.spool.writer(index, offset)
    last_saved = offset
    failures = 0
    try:
        while True:
            num = offset >> (szx + 4)
            m = Message(_CON, _GET, 0, os.urandom(4)).set_path(path)
            m.add(_BLOCK2, _block.encode(num, 0, szx))
            try:
                r = await up.ep.exchange(m, remote)
            except Exception as e:  # the server went away or the link lost the request and retries
                if isinstance(e, MemoryError):
                    raise
                failures += 1
                if failures > up.retries:
                    raise UpdateError("%s: no answer after %d tries (%s)" % (uri, failures, e))
                await _sleep_ms(min(up.backoff_ms << min(failures - 1, 6), 30000))
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
                w = up.spool.writer(index, 0)
                continue
            if s < szx:  # the server wants smaller blocks
                szx = s
            if n << (s + 4) != offset or len(payload) > (16 << s) or (more and len(payload) != 16 << s):
                raise UpdateError("%s: block %d does not continue at %d" % (uri, n, offset))
            if offset == 0:
                size2 = r.uint(_SIZE2)
                if size2 is not None and index == 0 and up.total == 0:
                    up.total = size2
            w.write(payload)
            offset += len(payload)
            up.done = base + offset
            if not more:
                break
            if offset - last_saved >= 16384:
                stored = w.flush()
                rec[1], rec[2], rec[3] = index, etag, stored
                up.store.put(_DL, cbor.dumps(rec))
                last_saved = offset
    finally:
        w.close()
    rec[1], rec[2], rec[3] = index + 1, None, 0
    up.store.put(_DL, cbor.dumps(rec))
    return offset
