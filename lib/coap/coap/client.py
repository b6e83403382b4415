# CoAP client: requests with retransmission and timeouts, Block-wise transfers in both directions
# (RFC 7959: Block2 downloads stream to a sink, Block1 uploads read from a source), Observe (RFC 7641).
import asyncio
import os
from coap import CoapError
from coap.endpoint import Endpoint, RequestTimeout, ResetError, ticks_ms
from coap.msg import Message
from coap import block
from coap.observe import fresher

try:
    from micropython import const
except ImportError:
    const = lambda x: x

_CON = const(0)
_NON = const(1)
_ACK = const(2)
_RST = const(3)
_EMPTY = const(0)
_GET = const(1)
_PUT = const(3)
_POST = const(2)
_DELETE = const(4)
_CONTINUE = const(95)
_TOO_LARGE = const(141)
_OBSERVE = const(6)
_BLOCK1 = const(27)
_BLOCK2 = const(23)
_SIZE1 = const(60)
_SIZE2 = const(28)
_ETAG = const(4)
_MAX_AGE = const(14)
_URI_PATH = const(11)
_URI_QUERY = const(15)



class _Slot:
    # Where a separate response lands; the Event is made only when one is awaited.
    def __init__(self):
        self.ev = None
        self.msg = None

    def __call__(self, m):
        self.msg = m
        if self.ev:
            self.ev.set()


def _opts(m, path, options):
    m.set_path(path)
    for n, v in options:
        m.add(n, v)
    return m


class Observation:
    """A running observation; notifications go to callback(msg). cancel() deregisters."""

    def __init__(self, client, remote, path, options, callback):
        self.client = client
        self.remote = remote
        self.path = path
        self.options = options
        self.callback = callback
        self.token = os.urandom(4)
        self.seq = None
        self.t = 0
        self.expires = 0
        self.active = True
        self.count = 0

    def __call__(self, m):
        if m.code >= 96 or not m.has(_OBSERVE):  # error or a plain response: the observation ended
            self.active = False
            self.client.waiters.pop((self.token, self.remote), None)
        else:
            v = m.uint(_OBSERVE)
            now = ticks_ms()
            if not fresher(self.seq, self.t, v, now):
                return  # reordered: older than what we have
            self.seq = v
            self.t = now
            self.expires = now + 1000 * m.uint(_MAX_AGE, 60)
        b2 = m.opt(_BLOCK2)
        if b2 is not None and block.decode(b2)[1]:  # Block2 with Observe: fetch the rest of this body
            asyncio.create_task(self._rest(m))
            return
        self.count += 1
        self.callback(m)

    async def _rest(self, first):
        try:
            body = bytearray(first.payload)
            et = first.opt(_ETAG)
            r = await self.client.request(_GET, self.remote, self.path, options=self.options,
                                          sink=_Append(body), start=block.decode(first.opt(_BLOCK2)), etag=et)
            r.payload = body
            self.count += 1
            self.callback(r)
        except CoapError:
            pass

    def stale(self):
        """True when Max-Age has run out without a notification."""
        return self.active and ticks_ms() - self.expires > 0

    async def cancel(self):
        """Proactive deregistration (GET with Observe: 1); the server stops notifying."""
        self.active = False
        c = self.client
        c.waiters.pop((self.token, self.remote), None)
        try:
            return await c.request(_GET, self.remote, self.path, options=((_OBSERVE, 1),) + tuple(self.options),
                                   token=self.token)
        except CoapError:
            return None


class _Append:
    def __init__(self, buf):
        self.buf = buf

    def __call__(self, off, data):
        self.buf += data


class Client(Endpoint):
    def __init__(self, transport, szx=None, timeout=None):
        Endpoint.__init__(self, transport)
        self.szx = block.szx_for(transport.max_message_size) if szx is None else szx
        self.timeout = timeout  # ms for a whole exchange; default EXCHANGE_LIFETIME
        self.locks = {}  # remote -> Lock: NSTART = 1 outstanding interaction per server

    def _lock(self, remote):
        lk = self.locks.get(remote)
        if lk is None:
            if len(self.locks) > 8:
                self.locks.clear()
            lk = self.locks[remote] = asyncio.Lock()
        return lk

    async def exchange(self, m, remote, timeout=None):
        """One request message -> its response message (piggybacked or separate)."""
        key = (m.token, remote)
        slot = _Slot()
        self.waiters[key] = slot
        tmo = timeout or self.timeout or self.params.exchange_lifetime()
        if self.task is None:
            self.start()
        t0 = ticks_ms()
        try:
            async with self._lock(remote):
                m.mid = self.next_mid()
                if m.type == _CON:
                    a = await self.send_con(m, remote)
                    if a.type == _RST:
                        raise ResetError("request reset by %s" % (remote,))
                    if a.code != _EMPTY:
                        return a
                else:
                    self.t.send(m.encode(), remote)
            if slot.msg is None:
                slot.ev = asyncio.Event()
                left = tmo - (ticks_ms() - t0)
                if left <= 0 or not await _wait(slot.ev, left):
                    raise RequestTimeout("no response within %d ms" % tmo)
            return slot.msg
        finally:
            if self.waiters.get(key) is slot:
                del self.waiters[key]

    async def request(self, method, remote, path, payload=b"", options=(), con=True, timeout=None, sink=None,
                      token=None, start=None, etag=None, szx=None):
        """Send a request; follow Block2 to the end of the body (into `sink(offset, data)` when given,
        else into the returned message's payload) and send big payloads (bytes or a source with .size and
        .read(off, n)) with Block1. Returns the final response Message. Raises RequestTimeout,
        ResetError, block.BlockError."""
        szx = self.szx if szx is None else szx
        psize = payload.size if hasattr(payload, "read") else len(payload)
        if psize > (16 << szx) or hasattr(payload, "read"):
            r, szx1 = await self._upload(method, remote, path, payload, psize, options, con, timeout, szx)
        else:
            m = _opts(Message(_CON if con else _NON, method, 0, token or os.urandom(4), payload), path, options)
            if start is not None:
                m.add(_BLOCK2, block.encode(start[0] + 1, 0, start[2]))
            elif method == _GET and szx < 6:
                m.add(_BLOCK2, block.encode(0, 0, szx))  # ask for smaller blocks up front
            r = await self.exchange(m, remote, timeout)
        b2 = r.opt(_BLOCK2)
        if b2 is None:
            if sink is not None and r.payload:
                sink(0, r.payload)
            return r
        if start is not None:
            rx = block.Receiver(sink)
            rx.offset = (start[0] + 1) << (start[2] + 4)
            rx.first = False
            rx.etag = etag
        else:
            body = None
            if sink is None:
                body = bytearray()
                sink = _Append(body)
            rx = block.Receiver(sink)
        num, more, s = block.decode(b2)
        nxt = rx.feed(num, more, s, r.payload, r.opt(_ETAG), r.uint(_SIZE2))
        while nxt is not None:
            m = _opts(Message(_CON if con else _NON, _GET if method == _GET else method, 0, os.urandom(4)), path,
                      [o for o in options if o[0] != _OBSERVE])
            m.add(_BLOCK2, block.encode(nxt, 0, s))
            r = await self.exchange(m, remote, timeout)
            b2 = r.opt(_BLOCK2)
            if b2 is None or r.code >= 96:
                raise block.BlockError("block %d: %s without Block2" % (nxt, r.code))
            num, more, s = block.decode(b2)
            nxt = rx.feed(num, more, s, r.payload, r.opt(_ETAG))
        if start is None and body is not None:
            r.payload = body
        r.size2 = rx.size
        return r

    async def _upload(self, method, remote, path, src, size, options, con, timeout, szx):
        if not hasattr(src, "read"):
            b = src
            src = None
        off = 0
        while True:
            bs = 16 << szx
            data = b[off:off + bs] if src is None else src.read(off, bs)
            more = off + len(data) < size
            m = _opts(Message(_CON if con else _NON, method, 0, os.urandom(4), data), path, options)
            m.add(_BLOCK1, block.encode(off >> (szx + 4), more, szx))
            if off == 0:
                m.add(_SIZE1, size)
            r = await self.exchange(m, remote, timeout)
            rb1 = r.opt(_BLOCK1)
            if r.code == _TOO_LARGE and rb1 is not None and off == 0:
                s = block.decode(rb1)[2]
                if s < szx:  # the server wants smaller blocks: start over at its size
                    szx = s
                    continue
            if not more or r.code != _CONTINUE:
                return r, szx
            off += len(data)
            if rb1 is not None:
                s = block.decode(rb1)[2]
                if s < szx:  # SZX negotiation: continue with the server's smaller size (off stays aligned)
                    szx = s

    async def get(self, remote, path, **kw):
        return await self.request(_GET, remote, path, **kw)

    async def put(self, remote, path, payload, **kw):
        return await self.request(_PUT, remote, path, payload, **kw)

    async def post(self, remote, path, payload, **kw):
        return await self.request(_POST, remote, path, payload, **kw)

    async def delete(self, remote, path, **kw):
        return await self.request(_DELETE, remote, path, **kw)

    async def observe(self, remote, path, callback, options=()):
        """Register; the first response and every fresh notification go to callback(msg). Returns the
        Observation (obs.active is False when the server declined)."""
        o = Observation(self, remote, path, tuple(options), callback)
        m = _opts(Message(_CON, _GET, 0, o.token), path, ((_OBSERVE, 0),) + o.options)
        key = (o.token, remote)
        slot = _Slot()
        self.waiters[key] = slot
        try:
            r = await self.exchange(m, remote)
        except Exception:
            self.waiters.pop(key, None)
            raise
        self.waiters[key] = o
        o(r)
        return o


async def _wait(ev, ms):
    try:
        await asyncio.wait_for(ev.wait(), ms / 1000)
        return True
    except asyncio.TimeoutError:
        return False
