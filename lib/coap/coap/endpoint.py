# Message layer (RFC 7252 section 4) over any transport (see coap/transport.py): CON retransmission with
# exponential backoff, deduplication, empty ACK / RST / ping handling, piggybacked and separate responses.
# Deduplication and backoff are plain bookkeeping; Endpoint is the thin asyncio edge around them.
# Server and Client (coap/server.py, coap/client.py) subclass Endpoint.
import asyncio
import os
from coap import CoapError
from coap.msg import Message, decode, MessageError

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

_CON = const(0)
_NON = const(1)
_ACK = const(2)
_RST = const(3)
_EMPTY = const(0)
_TOO_LARGE = const(141)

try:
    from time import ticks_ms, ticks_us, ticks_diff, ticks_add
    _sleep_ms = asyncio.sleep_ms
except ImportError:  # CPython
    from coap._cpython import ticks_ms, ticks_us, ticks_diff, ticks_add, sleep_ms as _sleep_ms

# An outgoing CON waiting for its ACK/RST is a list (a class would cost RAM): the Event (made only when the
# answer did not come while the endpoint polled for it), the answer (None after the last timeout), the bytes,
# the remote, the current timeout, when it is due, retransmissions left. The timer task retransmits it.
_P_EV = const(0)
_P_MSG = const(1)
_P_DATA = const(2)
_P_REMOTE = const(3)
_P_TMO = const(4)
_P_DUE = const(5)
_P_LEFT = const(6)


class RequestTimeout(CoapError):
    """No ACK/response within the retransmission window or the caller's timeout."""


class ResetError(CoapError):
    """The peer answered with RST."""


class RefusedError(CoapError):
    """The endpoint's transform refused the response (see coap/transform.py)."""


def initial_timeout(params, r16):
    """First retransmission timeout in ms: ACK_TIMEOUT * uniform[1, ACK_RANDOM_FACTOR], r16 in 0..65535."""
    t = params.ack_timeout
    return t + int(t * (params.ack_random_factor - 1) * r16 / 65535)


def szx_for(max_message_size, overhead=128):
    """Largest block size exponent whose block (plus header/options room) fits the transport."""
    s = 6
    while s and (16 << s) + overhead > max_message_size:
        s -= 1
    return s


def _cost(v):
    # Bytes a cached answer holds: encoded bytes, or (header-and-options prefix, source, offset, n) for a
    # Block2 block that is read again from the handler's source.
    return 0 if v is None else len(v[0]) + 16 if type(v) is tuple else len(v)


class Endpoint:
    def __init__(self, transport, dedup_limit=32):
        self.t = transport
        self.params = p = transport.params
        self.mid = int.from_bytes(os.urandom(2), "big")
        # Deduplication (RFC 7252 4.5): (remote, mid) -> [expiry, answer] over EXCHANGE_LIFETIME. A CON seen
        # again gets the stored answer, so its handler never runs twice; None while the answer is computed.
        # Bounded by entries and by the bytes the answers hold (room for two full-size answers; a Block2
        # block read from a source costs only its header): over either, the entry that expires first goes.
        self.dd = {}
        self.dd_size = 0
        self.dd_limit = dedup_limit
        self.dd_budget = 2 * transport.max_message_size
        self.pending = {}   # mid -> pending list (see _P_*)
        self.waiters = {}   # (token, remote) -> callable(msg), or a client's [msg, Event] slot
        self.task = None
        self.timer = None
        self.transform = None  # message-layer transform (OSCORE): see coap/transform.py

    def seen(self, key, now):
        """The dedup entry [expiry, answer] of key, or None."""
        e = self.dd.get(key)
        if e is not None and ticks_diff(e[0], now) <= 0:
            del self.dd[key]
            self.dd_size -= _cost(e[1])
            return None
        return e

    def remember(self, key, value, now=None):
        """Store the answer to the message key = (remote, mid) for its duplicates."""
        if now is None:
            now = ticks_ms()
        d = self.dd
        e = d.get(key)
        if e is not None:
            self.dd_size += _cost(value) - _cost(e[1])
            e[1] = value
        else:
            d[key] = [ticks_add(now, self.params.exchange_lifetime), value]
            self.dd_size += _cost(value)
        while len(d) > self.dd_limit or (self.dd_size > self.dd_budget and len(d) > 1):
            old = None
            for k, v in d.items():
                if k == key:
                    continue
                if ticks_diff(v[0], now) <= 0:
                    old = k
                    break
                if old is None or ticks_diff(v[0], d[old][0]) < 0:
                    old = k
            self.dd_size -= _cost(d.pop(old)[1])

    def start(self):
        if self.task is None:
            self.task = asyncio.create_task(self._loop())
        return self

    def close(self):
        for t in (self.task, self.timer):
            if t:
                t.cancel()
        self.task = self.timer = None
        self.t.close()

    def next_mid(self):
        self.mid = m = (self.mid + 1) & 0xFFFF
        return m

    async def _loop(self):
        t = self.t
        while True:
            try:
                data, remote = await t.recv()
            except OSError:
                return
            try:
                self.receive(data, remote)
            except Exception as e:  # one bad datagram must not stop the endpoint
                self.on_error(e)

    def on_error(self, e):
        pass

    def _empty(self, mtype, mid, remote):
        self.t.send(bytes((0x40 | (mtype << 4), 0, mid >> 8, mid & 255)), remote)

    def receive(self, data, remote):
        if type(data) is not bytes:
            data = bytes(data)  # decoded messages are views: own the buffer
        if len(data) > self.t.max_message_size:
            if len(data) >= 4 and data[0] >> 4 == 4:  # a _CON we could not take whole
                self._empty(_RST, (data[2] << 8) | data[3], remote)
            return
        try:
            m = decode(data)
        except MessageError as e:
            if e.type == _CON:  # RFC 7252 4.2: reject a malformed _CON with _RST; others are ignored
                self._empty(_RST, e.mid, remote)
            return
        m.remote = remote
        code = m.code
        mt = m.type
        if code == _EMPTY:
            if mt == _CON:  # CoAP ping
                self._empty(_RST, m.mid, remote)
            elif mt == _ACK or mt == _RST:
                self._acked(m)
            return
        if code < 32:  # request
            key = (remote, m.mid)
            now = ticks_ms()
            e = self.seen(key, now)
            if e is not None:  # a duplicate: answer as before, never run the handler again
                v = e[1]
                if mt == _CON and v is not None:
                    if type(v) is tuple:  # a Block2 block: read it again from the same source
                        d = v[1].read(v[2], v[3])
                        v = v[0] + b"\xff" + d if d else v[0]
                    self.t.send(v, remote)
                return
            self.remember(key, None, now)
            self.on_request(m)
            return
        # response
        if mt == _ACK:
            self._acked(m)
        elif mt == _RST:
            self._acked(m)
            return
        else:
            key = (remote, m.mid)
            now = ticks_ms()
            if self.seen(key, now) is not None:
                if mt == _CON:
                    self._empty(_ACK, m.mid, remote)
                return
        w = self.waiters.get((m.token, remote))
        if w is None:
            if mt != _ACK:  # unknown token: tell the sender to stop (also ends an unwanted observation)
                self._empty(_RST, m.mid, remote)
            return
        if mt != _ACK:
            if mt == _CON:
                self._empty(_ACK, m.mid, remote)
                self.remember(key, bytes((0x60, 0, m.mid >> 8, m.mid & 255)), now)
            else:
                self.remember(key, b"", now)
        if type(w) is list:  # a client's slot: [msg, Event or None]
            w[0] = m
            if w[1]:
                w[1].set()
        else:
            w(m)

    def _acked(self, m):
        p = self.pending.get(m.mid)
        if p is not None and p[_P_REMOTE] == m.remote:
            p[_P_MSG] = m
            if p[_P_EV]:
                p[_P_EV].set()

    def on_request(self, m):
        # Subclasses (Server) answer requests; a bare endpoint rejects them.
        if m.type == _CON:
            self._empty(_RST, m.mid, m.remote)

    async def send_con(self, m, remote):
        """Send a CON with retransmission; returns the ACK or RST message. Raises RequestTimeout."""
        if self.task is None:
            self.start()
        p = self.params
        mid = m.mid
        data = m.encode()
        tmo = initial_timeout(p, ticks_us() & 0xFFFF)  # jitter from the clock: no system call per CON
        pend = self.pending[mid] = [None, None, data, remote, tmo, ticks_add(ticks_ms(), tmo), p.max_retransmit]
        t = self.t
        t.send(data, remote)
        try:
            spin = getattr(t, "spin_us", 0)
            if spin:  # a nearby peer answers within microseconds: take it without a trip through the loop
                t0 = ticks_us()
                while pend[_P_MSG] is None and ticks_diff(ticks_us(), t0) < spin:
                    x = t.recv_now()
                    if x is not None:
                        self.receive(x[0], x[1])
            if pend[_P_MSG] is None:
                pend[_P_EV] = asyncio.Event()
                if self.timer is None:
                    self.timer = asyncio.create_task(self._timer())
                await pend[_P_EV].wait()
        finally:
            if self.pending.get(mid) is pend:
                del self.pending[mid]
        if pend[_P_MSG] is None:
            raise RequestTimeout("no ACK after %d transmissions" % (p.max_retransmit + 1))
        return pend[_P_MSG]

    async def _timer(self):
        # One task retransmits every pending CON (exponential backoff); it runs only while CONs are pending.
        # Ticking at ACK_TIMEOUT/8 keeps each timeout within 12.5 % of its randomised value.
        tick = (self.params.ack_timeout >> 3) or 1
        pending = self.pending
        while pending:
            await _sleep_ms(tick)
            now = ticks_ms()
            for mid, p in list(pending.items()):
                if ticks_diff(now, p[_P_DUE]) >= 0:
                    if p[_P_LEFT]:
                        p[_P_LEFT] -= 1
                        p[_P_TMO] *= 2
                        p[_P_DUE] = ticks_add(now, p[_P_TMO])
                        self.t.send(p[_P_DATA], p[_P_REMOTE])
                    else:
                        del pending[mid]
                        if p[_P_EV]:
                            p[_P_EV].set()
        self.timer = None

    async def ping(self, remote):
        """CoAP ping: an empty CON; the peer answers RST. Returns True, or raises RequestTimeout."""
        m = Message(_CON, _EMPTY, self.next_mid())
        r = await self.send_con(m, remote)
        return r.type == _RST
