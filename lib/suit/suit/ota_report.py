# The reports to the update server (POST /suit/report, CBOR), kept until the server has them. A report goes into
# the store's outbox before it is sent, and leaves it only when the server answered it (2.xx, or 4.xx: refused
# for good). One the server did not take (no answer, 5.xx, no heap for the datagram, a reset while it was in
# flight) goes again: before the next report, at the next boot (Updater.boot) and, while the board is idle,
# from a background retry (resend) whose pauses grow to 10 minutes. Each report carries a random id
# (key 9): the server records a report it already has only once, so one sent again after its answer was lost
# is not counted twice. Small and imported per report: a boot that only reports does not load suit.ota_run.
import os

import cbor
from suit import const
from suit.ota import _LAST, IDLE, _sleep_ms

_OUTBOX = "suit-out"  # [report body (CBOR bytes), ...], oldest first: the reports the server has not taken
_POST = const(2)
_KEEP = const(4)  # reports kept at most; the oldest goes first (the newest outcome matters most)
_TRIES = const(3)  # sends of one report per flush, backoff_ms << i apart
_MAX_PAUSE = const(600000)  # the idle retry's longest pause, ms



def kept(up):
    """The reports the server has not taken yet (CBOR bodies, oldest first)."""
    raw = up.store.get(_OUTBOX)
    if not raw:
        return []
    try:
        q = cbor.loads(raw)
        if type(q) is list:
            return q
    except ValueError:
        pass
    up.store.delete(_OUTBOX)  # not a list of reports: it would stop every report after it
    return []


def _save(up, q):
    try:
        if q:
            up.store.put(_OUTBOX, cbor.dumps(q))
        else:
            up.store.delete(_OUTBOX)
        return True
    except OSError:  # a full filesystem: the report is still sent, once
        return False


async def report(up, seq, ok, reason, message, suit_report, phase=None, timing=None):
    """POST /suit/report {1: device, 2: seq, 3: ok, 4: reason, 5: message, 6: phase, 7: SUIT report,
    8: {phase: ms}, 9: report id}; the outcome is also kept (/suit/state key 4). True: the server took it
    (2.xx). Otherwise it stays in the outbox (unless refused with 4.xx) and goes again later."""
    try:
        up.store.put(_LAST, cbor.dumps({1: seq, 2: ok, 3: reason, 4: message}))
    except OSError:  # a full filesystem must not keep the report from the server
        pass
    body = {1: up.device_id, 2: seq, 3: ok, 4: reason, 5: message, 6: phase or (IDLE if ok else "failed"),
            9: os.urandom(4)}
    if suit_report is not None:
        body[7] = suit_report
    if timing:
        body[8] = timing
    data = cbor.dumps(body)
    body = None
    q = kept(up)
    q.append(data)
    if not _save(up, q[-_KEEP:]):
        return await _send(up, data) is True
    got = await flush(up, data)
    if kept(up):
        resend(up)  # not all taken: the idle retry goes on with them (a restart leaves it to the next boot)
    return got is True


async def flush(up, mine=None):
    """Send the kept reports, oldest first, each removed once the server answered it. Returns the answer to
    the report `mine` (True: taken, False: refused) or, without it, True when none is left; None: a report was
    not taken (it and the later ones stay)."""
    got = None
    while True:
        q = kept(up)
        if not q:
            return got if mine is not None else True
        data = q[0]
        res = await _send(up, data)
        if res is None:
            return None
        if data == mine:
            got = res
        q = kept(up)  # (read again: another flush may have run while this one waited)
        if q and q[0] == data and not _save(up, q[1:]):
            return got if mine is not None else None  # it cannot leave the outbox: no second round now


async def _send(up, data):
    # True: 2.xx; False: 4.xx (the server refuses this report: sending it again would not help); None: not
    # taken (no answer, 5.xx, no heap for the exchange)
    for i in range(_TRIES):
        if i:
            await _sleep_ms(up.backoff_ms << i)
        try:
            r = await up.ep.request(_POST, up.server, "/suit/report", data)
            if r.code < 160:
                return r.code < 128
        except Exception as e:
            if isinstance(e, MemoryError):
                import gc
                gc.collect()
    return None


def resend(up):
    """Send the kept reports again in the background (the task is up.resending), until the server has them
    all; Updater.boot starts it when some wait from an earlier boot."""
    if getattr(up, "resending", None) is None:  # (set only while one runs: the serving heap is tight)
        import asyncio
        up.resending = asyncio.create_task(_retry(up))


async def _retry(up):
    # While reports are kept, send them, after a pause of backoff_ms, then twice that, ... up to 10 minutes
    # between rounds.
    pause = up.backoff_ms
    try:
        while True:
            await _sleep_ms(pause)
            try:
                if await flush(up) is not None:
                    return
            except MemoryError:  # (reading the outbox found no room: the next round tries again)
                import gc
                gc.collect()
            pause = min(pause * 2, _MAX_PAUSE)
    finally:
        del up.resending
