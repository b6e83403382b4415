# The client role of coap.endpoint.Endpoint, loaded with its first request (as coap.serve, the server role, is
# with its first resource), so an endpoint that only serves never holds this code. The endpoint's methods
# (send_con, exchange, request) call these with the endpoint first; the message layer (receive, the
# pending CONs, token routing) stays in coap/endpoint.py. CON retransmission, one request and its response,
# Block-wise transfers both ways (the rest of a Block2 body in coap.download, Block1 in coap.upload).
import asyncio
import os
from coap import CoapError
from coap.msg import Message

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

try:
    from time import ticks_ms, ticks_us, ticks_diff, ticks_add
    sleep_ms = asyncio.sleep_ms
except ImportError:  # CPython
    from coap._cpython import ticks_ms, ticks_us, ticks_diff, ticks_add, sleep_ms

_CON = const(0)
_NON = const(1)
_ACK = const(2)
_RST = const(3)
_EMPTY = const(0)
_GET = const(1)
_BLOCK2 = const(23)
_TRIES = const(4)  # transmissions of a request whose answers carry another request's token, then an error
_D_OBJ = const(7)  # the deduplication slot's field coap.dedup keeps an answer object in


# The client role's failures (coap.endpoint names them too, loading this module when asked).
class RequestTimeout(CoapError):
    """No ACK/response within the retransmission window or the caller's timeout."""


class ResetError(CoapError):
    """The peer answered with RST."""


class RefusedError(CoapError):
    """The endpoint's transform refused the response (see coap/transform.py)."""


# An outgoing CON waiting for its ACK/RST is a list (a class would cost RAM): the Event (made only when the
# answer did not come while the endpoint polled for it), the answer (None after the last timeout), the bytes,
# the remote, the current timeout, when it is due, retransmissions left. The timer task retransmits it;
# coap.endpoint's message layer sets the answer.
_P_EV = const(0)
_P_MSG = const(1)
_P_DATA = const(2)
_P_REMOTE = const(3)
_P_TMO = const(4)
_P_DUE = const(5)
_P_LEFT = const(6)
_P_T0 = const(7)  # when it was sent (us), on a transport that spins, when the spin did not take its answer


def initial_timeout(params, r):
    """First retransmission timeout in ms: ACK_TIMEOUT * uniform[1, ACK_RANDOM_FACTOR], r in 0..65535."""
    return params.ack_timeout + params.ack_spread * r // 65535  # integers: no float per CON


# How long this process's CONs waited for their answers lately (us, smoothed; 0 before the first answer).
_answer_us = [0]


def _answered(us, spin):
    # One more answer time into _answer_us; one that came after a retransmission counts as twice the spin
    # limit at most, so a lost datagram does not stop the spin for the requests after it.
    if us > 2 * spin:
        us = 2 * spin
    est = _answer_us[0]
    _answer_us[0] = us if not est else (3 * est + us) >> 2


def _send(ep, data, mid, remote):
    # Send a CON's bytes and keep it pending (retransmitted by the timer task); then poll the transport for
    # its answer: a nearby peer answers within a millisecond, and the answer is taken without a trip through
    # the event loop. The poll lasts half as long again as the answers took lately, at most the transport's
    # spin_us; a peer that answers later than that (a radio link away) is not polled for. Returns the
    # pending list.
    p = ep.params
    tmo = initial_timeout(p, ticks_us() & 0xFFFF)  # jitter from the clock: no system call per CON
    pend = ep.pending[mid] = [None, None, data, remote, tmo, ticks_add(ticks_ms(), tmo), p.max_retransmit]
    t = ep.t
    t.send(data, remote)
    limit = getattr(t, "spin_us", 0)
    if limit:
        est = _answer_us[0]
        spin = limit if not est else 0 if est >= limit else min(limit, est + (est >> 1))
        t0 = ticks_us()
        while pend[_P_MSG] is None and ticks_diff(ticks_us(), t0) < spin:
            x = t.recv_now()
            if x is not None:
                ep.receive(x[0], x[1])
        if pend[_P_MSG] is not None:
            _answered(ticks_diff(ticks_us(), t0), limit)
        else:
            pend.append(t0)  # _P_T0: _answer measures the rest
    return pend


async def _answer(ep, mid, pend):
    # The ACK or RST of a pending CON, once it came. Raises RequestTimeout.
    try:
        if pend[_P_MSG] is None:
            pend[_P_EV] = asyncio.Event()
            if ep.timer is None:
                ep.timer = asyncio.create_task(_timer(ep))
            await pend[_P_EV].wait()
    finally:
        if ep.pending.get(mid) is pend:
            del ep.pending[mid]
    if pend[_P_MSG] is None:
        raise RequestTimeout("no ACK after %d transmissions" % (ep.params.max_retransmit + 1))
    if len(pend) > _P_T0:  # sent by _send on a transport that spins: how long this answer took
        _answered(ticks_diff(ticks_us(), pend[_P_T0]), ep.t.spin_us)
    return pend[_P_MSG]


def on_response(ep, m):
    """A response from the message layer: an ACK/RST ends its pending CON, a CON/NON one is deduplicated;
    then routed by token to its exchange or Observation (an unknown token gets RST)."""
    mt = m.type
    if mt == _ACK:
        ep.acked(m)
    elif mt == _RST:
        ep.acked(m)
        return
    else:  # a separate response or a notification: the peer's own MID, deduplicated
        from coap import dedup
        now = ticks_ms()
        s = dedup.find(ep, m.remote, m.mid, now)
        if s >= 0 and dedup.resend(ep, s, mt):
            return
        s = dedup.add(ep, m.remote, m.mid, now)
    w = ep.waiters.get((m.token, m.remote))
    if w is None:
        if mt != _ACK:  # unknown token: tell the sender to stop (also ends an unwanted observation)
            ep.send_empty(_RST, m.mid, m.remote)
            dedup.store(ep, s, bytes((0x70, 0, m.mid >> 8, m.mid & 255)))
        return
    # Token routing: a client's exchange slot [response, Event], or a callable (an Observation); a CON is
    # acknowledged once routed. A MemoryError before that drops the message as if never received (the
    # endpoint's loop collects and goes on): its slot is freed and nothing acknowledged, so the peer's
    # retransmission is taken as new. (A slot left "answer pending" made every retransmission of a CON
    # notification a duplicate to ignore: never acknowledged, never delivered.)
    try:
        if type(w) is list:
            w[0] = m
            if w[1]:
                w[1].set()
        else:
            w(m)
        if mt == _CON:
            dedup.store(ep, s, bytes((0x60, 0, m.mid >> 8, m.mid & 255)))
            ep.send_empty(_ACK, m.mid, m.remote)
    except MemoryError:
        if mt != _ACK:
            d = ep.dd
            d[s] = -1  # the index's entry is then stale: coap.dedup's find checks the slot's MID
            d[s + _D_OBJ] = None
        raise


async def send_con(ep, m, remote):
    if ep.task is None:
        ep.start()
    return await _answer(ep, m.mid, _send(ep, m.encode(), m.mid, remote))


async def _timer(ep):
    # One task retransmits every pending CON (exponential backoff); it runs only while CONs are pending.
    # Ticking at ACK_TIMEOUT/8 keeps each timeout within 12.5 % of its randomised value. The work is in _tick,
    # a plain function: a pending list left in this coroutine's frame would keep its answer alive.
    tick = (ep.params.ack_timeout >> 3) or 1
    while ep.pending:
        await sleep_ms(tick)
        _tick(ep, ticks_ms())
    ep.timer = None


def _tick(ep, now):
    pending = ep.pending
    for mid, p in list(pending.items()):
        if ticks_diff(now, p[_P_DUE]) >= 0:
            if p[_P_LEFT]:
                p[_P_LEFT] -= 1
                p[_P_TMO] *= 2
                p[_P_DUE] = ticks_add(now, p[_P_TMO])
                ep.t.send(p[_P_DATA], p[_P_REMOTE])
            else:
                del pending[mid]
                if p[_P_EV]:
                    p[_P_EV].set()


def _next(locks, remote):
    # The outstanding exchange with remote ended: the first waiting request's turn, or nobody's.
    q = locks[remote]
    if q:
        q.pop(0).set()
    else:
        del locks[remote]


async def exchange(ep, m, remote, timeout=None):
    inner = m
    m.remote = remote  # a transform picks its per-peer state (an OSCORE context) by it
    tf = ep.transform
    if tf is not None:
        from coap.transform import request_out
        m = request_out(ep, inner)
    key = (m.token, remote)
    slot = [None, None]  # [response, Event]: the Event is made only when a separate response is awaited
    waiters = ep.waiters
    waiters[key] = slot
    if ep.task is None:
        ep.start()
    t0 = ticks_ms()
    try:
        # NSTART = 1 (RFC 7252 4.7): one outstanding CON per server. ep.locks[remote], present while one is
        # outstanding, is None or lists the Events of the requests waiting for it; the owner hands it to the
        # first. (An asyncio.Lock costs ~12k VM instructions per acquire/release; this, uncontended, a dict
        # entry and nothing allocated.)
        locks = ep.locks
        if remote not in locks:
            locks[remote] = None
        else:
            q = locks[remote]
            if q is None:
                q = locks[remote] = []
            ev = asyncio.Event()
            q.append(ev)
            try:
                await ev.wait()
            except BaseException:  # cancelled while waiting: give up its place, or the turn it was given
                if ev in q:
                    q.remove(ev)
                else:
                    _next(locks, remote)
                raise
        try:
            tries = _TRIES
            while True:
                m.mid = mid = ep.next_mid()
                if m.type != _CON:
                    ep.t.send(m.encode(), remote)
                    break
                pend = _send(ep, m.encode(), mid, remote)
                if pend[_P_MSG] is None:  # not there yet: wait (the endpoint's loop or the timer sets it)
                    a = await _answer(ep, mid, pend)
                else:
                    a = pend[_P_MSG]
                    if ep.pending.get(mid) is pend:
                        del ep.pending[mid]
                if a.type == _RST:
                    raise ResetError("request reset by %s" % (remote,))
                # A response matches by token (RFC 7252 5.3.2): on_response routed an answer on the ACK with
                # this (outer) request's token into the slot before the ACK ended the pending CON. One that
                # is not there carries another request's token: the server's old answer to an earlier
                # boot's use of this Message ID (it remembers one for EXCHANGE_LIFETIME). Asked again under
                # a fresh random ID at least 1K away (the next one most likely lies in that same remembered run).
                if a.code == _EMPTY or slot[0] is a:
                    break
                tries -= 1
                if not tries:
                    raise CoapError("%d answers with another request's token (Message IDs the server "
                                    "remembers)" % _TRIES)
                ep.mid = (mid + 1024 + int.from_bytes(os.urandom(2), "big") % 63488) & 0xFFFF
        finally:
            _next(locks, remote)
        if slot[0] is None:
            tmo = timeout or ep.timeout or ep.params.exchange_lifetime
            slot[1] = asyncio.Event()
            left = tmo - ticks_diff(ticks_ms(), t0)
            try:
                if left <= 0:
                    raise asyncio.TimeoutError
                await asyncio.wait_for(slot[1].wait(), left / 1000)
            except asyncio.TimeoutError:
                raise RequestTimeout("no response within %d ms" % tmo)
    finally:
        if waiters.get(key) is slot:
            del waiters[key]
    r = slot[0]
    if tf is not None:
        from coap.transform import response_in
        r = response_in(ep, inner, r)
        if r is not None and type(r) is not Message:  # an awaitable: more exchanges first (coap/transform.py)
            r = await r
        if r is None:
            raise RefusedError("response refused")
    return r


async def request(ep, method, remote, path, payload=b"", options=(), con=True, timeout=None, sink=None,
                  token=None, start=None, etag=None, szx=None):
    """Send a request; follow Block2 to the end of the body (into `sink(offset, data)` when given, else
    into the returned message's payload) and send big payloads (bytes or a source with .size and
    .read(off, n)) with Block1. options: (number, value) pairs; con=False sends NON; timeout in ms for the
    whole exchange; start/etag resume a Block2 body after block start (a decoded Block2 value) of that ETag;
    szx: the block size exponent (default the endpoint's). Returns the final response Message. Raises
    RequestTimeout, ResetError, RefusedError, block.BlockError; CoapError when every answer carried another
    request's token (see exchange)."""
    szx = ep.szx if szx is None else szx
    psize = payload.size if hasattr(payload, "read") else len(payload)
    if psize > (16 << szx) or hasattr(payload, "read"):
        from coap import upload
        r, szx1 = await upload.send(ep, method, remote, path, payload, psize, options, con, timeout, szx)
    else:
        m = Message(_CON if con else _NON, method, 0, token or os.urandom(4), payload).set_path(path)
        for o in options:
            m.add(o[0], o[1])
        if start is not None:
            m.add(_BLOCK2, ((start[0] + 1) << 4) | start[2])
        elif method == _GET and szx < 6:
            m.add(_BLOCK2, szx)  # block 0 at a smaller size: ask for smaller blocks up front
        r = await exchange(ep, m, remote, timeout)
    if not r.has(_BLOCK2):
        if sink is not None and r.payload:
            sink(0, r.payload)
        return r
    from coap.download import fetch  # the rest of a Block2 body
    # The first response goes to fetch in a list, which takes it out: this frame then keeps no block alive.
    r = [r]
    return await fetch(ep, r, method, remote, path, options, con, timeout, sink, start, etag)
