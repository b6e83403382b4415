# Message layer (RFC 7252 section 4) over any transport (see coap/transport.py): CON retransmission with
# exponential backoff, deduplication, empty ACK / RST / ping handling, piggybacked and separate responses.
# The bookkeeping (Dedup, backoff) is sans-IO; Endpoint is the thin asyncio edge around it.
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
    from time import ticks_ms, ticks_diff, ticks_add
except ImportError:
    import time

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b


class RequestTimeout(CoapError):
    """No ACK/response within the retransmission window or the caller's timeout."""


class ResetError(CoapError):
    """The peer answered with RST."""


def rand16():
    b = os.urandom(2)
    return (b[0] << 8) | b[1]


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


class Dedup:
    """Bounded (remote, mid) -> answer cache over EXCHANGE_LIFETIME. A CON seen again gets the stored answer
    (its handler never runs twice); entries whose answer is still being computed hold None. Bounded by entry
    count and by the bytes the answers hold: when over either, the entry that expires first goes."""

    def __init__(self, lifetime_ms, limit=32, budget=2560):
        self.lifetime = lifetime_ms
        self.limit = limit
        self.budget = budget
        self.size = 0
        self.d = {}

    def get(self, key, now):
        e = self.d.get(key)
        if e is None:
            return None
        if ticks_diff(e[0], now) <= 0:
            del self.d[key]
            self.size -= _cost(e[1])
            return None
        return e

    def put(self, key, value, now):
        d = self.d
        e = d.get(key)
        if e is not None:
            self.size += _cost(value) - _cost(e[1])
            e[1] = value
        else:
            d[key] = [ticks_add(now, self.lifetime), value]
            self.size += _cost(value)
        while len(d) > self.limit or (self.size > self.budget and len(d) > 1):
            old = None
            for k, v in d.items():
                if k == key:
                    continue
                if ticks_diff(v[0], now) <= 0:
                    old = k
                    break
                if old is None or ticks_diff(v[0], d[old][0]) < 0:
                    old = k
            self.size -= _cost(d.pop(old)[1])


class _Pending:
    # One outgoing CON waiting for its ACK/RST; the endpoint's timer task retransmits it.
    def __init__(self, data, remote, tmo, left):
        self.ev = asyncio.Event()
        self.msg = None  # the ACK (maybe with a piggybacked response) or RST; None after the last timeout
        self.data = data
        self.remote = remote
        self.tmo = tmo
        self.due = ticks_add(ticks_ms(), tmo)
        self.left = left


try:
    _sleep_ms = asyncio.sleep_ms
except AttributeError:
    def _sleep_ms(ms):
        return asyncio.sleep(ms / 1000)


class Endpoint:
    def __init__(self, transport):
        self.t = transport
        self.params = p = transport.params
        self.mid = rand16()
        # Room for two full-size cached answers (Block2 blocks read from a source cost only their header).
        self.dedup = Dedup(p.exchange_lifetime, 32, 2 * transport.max_message_size)
        self.pending = {}   # mid -> _Pending
        self.waiters = {}   # (token, remote) -> callable(msg) for responses/notifications
        self.task = None
        self.timer = None

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
            e = self.dedup.get(key, now)
            if e is not None:  # a duplicate: answer as before, never run the handler again
                v = e[1]
                if mt == _CON and v is not None:
                    if type(v) is tuple:  # a Block2 block: read it again from the same source
                        d = v[1].read(v[2], v[3])
                        v = v[0] + b"\xff" + d if d else v[0]
                    self.t.send(v, remote)
                return
            self.dedup.put(key, None, now)
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
            if self.dedup.get(key, now) is not None:
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
                self.dedup.put(key, bytes((0x60, 0, m.mid >> 8, m.mid & 255)), now)
            else:
                self.dedup.put(key, b"", now)
        w(m)

    def _acked(self, m):
        p = self.pending.get(m.mid)
        if p is not None and p.remote == m.remote:
            p.msg = m
            p.ev.set()

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
        pend = self.pending[mid] = _Pending(data, remote, initial_timeout(p, rand16()), p.max_retransmit)
        self.t.send(data, remote)
        if self.timer is None:
            self.timer = asyncio.create_task(self._timer())
        try:
            await pend.ev.wait()
        finally:
            if self.pending.get(mid) is pend:
                del self.pending[mid]
        if pend.msg is None:
            raise RequestTimeout("no ACK after %d transmissions" % (p.max_retransmit + 1))
        return pend.msg

    async def _timer(self):
        # One task retransmits every pending CON (exponential backoff); it runs only while CONs are pending.
        # Ticking at ACK_TIMEOUT/8 keeps each timeout within 12.5 % of its randomised value.
        tick = (self.params.ack_timeout >> 3) or 1
        pending = self.pending
        while pending:
            await _sleep_ms(tick)
            now = ticks_ms()
            for mid, p in list(pending.items()):
                if ticks_diff(now, p.due) >= 0:
                    if p.left:
                        p.left -= 1
                        p.tmo *= 2
                        p.due = ticks_add(now, p.tmo)
                        self.t.send(p.data, p.remote)
                    else:
                        del pending[mid]
                        p.ev.set()
        self.timer = None

    async def ping(self, remote):
        """CoAP ping: an empty CON; the peer answers RST. Returns True, or raises RequestTimeout."""
        m = Message(_CON, _EMPTY, self.next_mid())
        r = await self.send_con(m, remote)
        return r.type == _RST
