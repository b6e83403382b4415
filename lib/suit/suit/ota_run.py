# One update run of suit.ota.Updater, after suit.ota_check authenticated its envelope: download each payload
# URI (Block2, the next block asked for while this one is written, resuming from the last good block while the
# ETag is the same) into the spool, then install with the processor reading the spool (suit.ota_boot.install;
# with install_at_boot, after a soft reset). Also the reports, the poll and the trigger by URI. Imported per
# run and released after it (Updater.release), so a board's steady state does not hold it.
import asyncio
import os

import cbor
from coap import block as _block
from coap.msg import Message, uint_bytes
from suit import SuitError, const
from suit.ota import _PENDING, FETCH, IDLE, _sleep_ms
from suit.ota_common import (_DL, _ENV, FAILED, FETCHED, INSTALL, RESTART, ms_since as _ms_since,
                             ticks_ms as _ticks_ms)
from suit.ota_report import report

_CON = const(0)
_GET = const(1)
_VALID = const(67)
_CONTENT = const(69)
_ETAG = const(4)
_BLOCK2 = const(23)
_SIZE2 = const(28)
_SAVE_EVERY = const(65536)  # bytes between two resumption records (a store write each)
_FETCH_BOOTS = const(3)  # boots a download may run out of memory in before it counts as failed


class UpdateError(Exception):
    """A transfer failed for good (after the retries)."""


async def run(up, data, info, resumed=False):
    """The background task of one update; restarts the board when the install (or, with install_at_boot,
    the download; with fetch_at_boot, the check) is done. resumed: the download after that restart (the
    envelope is in the store)."""
    digest, seq, uris = info
    try:
        if up.install_at_boot and not resumed:
            # stored first, on the heap the check gave back: the install at boot reads it from the store, and
            # the download goes on without it (a store write of it later would need two more copies in one
            # piece each, on the heap the download fragmented)
            up.store.put(_ENV, data)
            data = None
            if up.fetch_at_boot:
                # the download starts after a soft reset (Updater.boot -> resume), on a clean heap
                up.store.put(_PENDING, cbor.dumps({0: up.kind, 1: seq, 2: digest, 4: FETCH, 6: uris}))
                up.task = None
                up.release()
                await _sleep_ms(50)  # the trigger's answer goes out before the restart
                up.restart("soft")
                return
        restart = await update(up, data, digest, seq, uris)
    except Exception as e:  # never an unhandled task: report it
        restart = False
        if up.fetch_at_boot:
            if isinstance(e, MemoryError) and _again_at_boot(up, e):
                # the download's own boot ran out of heap (its report would find no room either): the next
                # boot resumes it from its last good block on a clean heap, or reports it
                up.task = None
                up.release()
                up.restart("soft")
                return
            up.store.delete(_PENDING)  # nothing waits at the next boot any more
            up.store.delete(_ENV)
        await report(up, seq, False, 11, "%s: %s" % (type(e).__name__, e), None)
    up.task = None
    up.release()
    up.set_phase(IDLE)
    if restart:
        up.set_phase(RESTART)
        await _sleep_ms(50)  # the report's ACK goes out before the restart
        up.restart("hard" if up.kind == "ota" and not up.install_at_boot else "soft")


def _again_at_boot(up, e):
    # A MemoryError in a download's boot (fetch_at_boot): the pending record counts the boots it took; after
    # _FETCH_BOOTS the next boot reports the failure (Updater.boot's failed phase) instead. False: the record
    # could not be kept (the failure is reported from here).
    try:
        pend = cbor.loads(up.store.get(_PENDING))
        boots = pend.get(10, 0) + 1
        pend[10] = boots
        if boots >= _FETCH_BOOTS:
            pend[4] = FAILED
            pend[5] = [11, "MemoryError in the download, %d boots: %s" % (boots, e)]
            up.store.delete(_ENV)
        up.store.put(_PENDING, cbor.dumps(pend))
        return True
    except Exception:  # (a MemoryError again, or no record: reported from here)
        return False


async def resume(up, pend):
    """The download of an authenticated update after the trigger's restart (Updater(fetch_at_boot=True));
    a reset during it starts it again at boot, from its last good block."""
    await run(up, None, (pend[2], pend[1], pend[6]), True)


async def run_uri(up, uri):
    try:
        remote, path = resolve(up, uri)
        r = await up.ep.request(_GET, remote, path, szx=up.szx)
        if r.code != _CONTENT:
            raise UpdateError("manifest %s: %d.%02d" % (uri, r.code >> 5, r.code & 31))
        data = bytes(r.payload)
        from suit.ota_check import checked
        info = checked(up, data)
    except Exception as e:
        up.task = None
        up.release()
        await report(up, None, False, 11, str(e), None)
        return
    await run(up, data, info)


async def update(up, data, digest, seq, uris):
    """Download, then install (with install_at_boot the envelope waits in the store, data is None). True:
    restart now."""
    up.set_phase(FETCH)
    t0 = _ticks_ms()
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
    pending = {0: up.kind, 1: seq, 2: digest, 4: FETCHED, 6: uris, 7: {FETCH: _ms_since(t0)}}
    if up.kind == "ota":
        pending[3] = up.spool.running.get_next_update().info()[4]
    if up.install_at_boot:  # (the envelope is in the store already: run())
        up.store.put(_PENDING, cbor.dumps(pending))
        up.store.delete(_DL)
        await report(up, seq, True, 0, "downloaded; installing at the restart", None, FETCHED, pending[7])
        return True  # the soft reset: suit.ota_boot.install_pending installs before the app starts
    up.set_phase(INSTALL)
    from suit.ota_boot import install
    res = install(up.store, up.make_processor, up.spool, data, pending)
    if not res.ok:
        await report(up, seq, False, res.reason, res.message, res.report)
        return False
    await report(up, seq, True, 0, "installed; restarting", res.report, RESTART, pending[7])
    return True


async def download(up, index, uri, start, etag, rec, base):
    """Block2 download of uri into the spool from byte `start`; returns the size."""
    remote, path = resolve(up, uri)
    path += ("&" if "?" in path else "?") + "d=" + up.device_id.decode()
    szx = up.szx
    bs = 16 << szx
    offset = up.spool.resume_at(index, start, bs)
    if offset == 0:
        etag = None
    w = up.spool.writer(index, offset)
    last_saved = offset
    failures = 0
    opts = Message().set_path(path).opts  # Uri-Path and Uri-Query, split once for every block's request
    ahead = None  # the request for the block at `offset`, sent before the previous block was written
    try:
        while True:
            try:
                if ahead is None:
                    r = await _get_block(up, remote, opts, offset >> (szx + 4), szx)
                else:
                    r = await ahead
                    ahead = None
            except Exception as e:  # the server went away, the link lost the request and its retries, or
                ahead = None        # the heap had no room for a datagram: collect and ask again
                if isinstance(e, MemoryError):
                    import gc
                    gc.collect()
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
            if more and n << (s + 4) == offset:
                # ask for the next block at once: the server works on it while this one is checked and written
                # (a flash erase, on a board); anything wrong with this one cancels it. The yield lets the new
                # task send its request now: a task runs only when this coroutine waits, which before was after
                # the write (test_the_next_block_is_asked_for_before_this_one_is_written)
                ahead = asyncio.create_task(_get_block(up, remote, opts, n + 1, s))
                await asyncio.sleep(0)
            et = r.opt(_ETAG)
            et = bytes(et) if et is not None else None
            if etag is None and offset == 0:
                etag = et
            elif et != etag:
                # a different payload now: start over
                if ahead is not None:
                    ahead.cancel()
                    ahead = None
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
            if offset - last_saved >= _SAVE_EVERY:
                stored = w.flush()
                rec[1], rec[2], rec[3] = index, etag, stored
                up.store.put(_DL, cbor.dumps(rec))
                last_saved = offset
    finally:
        if ahead is not None:
            ahead.cancel()
        w.close()
    rec[1], rec[2], rec[3] = index + 1, None, 0
    up.store.put(_DL, cbor.dumps(rec))
    return offset


async def _get_block(up, remote, opts, num, szx):
    m = Message(_CON, _GET, 0, os.urandom(4))
    m.opts = opts + [(_BLOCK2, uint_bytes(_block.encode(num, 0, szx)))]
    return await up.ep.exchange(m, remote)  # (the requester takes only an answer with this token)


def resolve(up, uri):
    """coap://host:port/path -> (remote, path); every request goes to `server` (the gateway on serial)."""
    if uri.startswith("coap://"):
        rest = uri[7:]
        i = rest.find("/")
        path = rest[i:] if i >= 0 else "/"
    elif uri.startswith("/"):
        path = uri
    else:
        raise UpdateError("unsupported URI %s" % uri)
    return up.server, path


async def poll_once(up, path):
    """Updater.poll_once."""
    import asyncio
    opts = ()
    if up.etag is not None:
        opts = ((_ETAG, up.etag),)  # a validation request (RFC 7252 5.10.6.1): 2.03 when unchanged
    path = path + ("&" if "?" in path else "?") + "d=" + up.device_id.decode()
    r = await up.ep.request(_GET, up.server, path, options=opts, szx=up.szx)
    if r.code == _VALID:
        return "same"
    if r.code != _CONTENT:
        return "%d.%02d" % (r.code >> 5, r.code & 31)
    et = r.opt(_ETAG)
    up.etag = bytes(et) if et is not None else None
    data = bytes(r.payload)
    from suit.ota_check import checked
    try:
        info = checked(up, data)
    except SuitError as e:
        if e.reason == 4 and "not newer" in e.args[0]:
            return "old"
        await report(up, None, False, e.reason, str(e), None)
        return str(e)
    up.task = asyncio.create_task(run(up, data, info))
    return "updating"
