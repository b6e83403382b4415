# CoAP client: requests with retransmission and timeouts, Block-wise transfers in both directions
# (RFC 7959: Block2 downloads stream to a sink, Block1 uploads read from a source), Observe (RFC 7641).
import asyncio
import os
from coap import CoapError
from coap.endpoint import Endpoint, RequestTimeout, ResetError, RefusedError, ticks_ms, szx_for
from coap.msg import Message

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

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



def _inner(tf, ep, req, resp):
    # The transform's inner response, with the outer message-layer fields (see coap/transform.py).
    r = tf.incoming_response(ep, req, resp)
    if r is not None and r is not resp:
        r.type = resp.type
        r.mid = resp.mid
        r.token = resp.token
        r.remote = resp.remote
    return r


class Client(Endpoint):
    def __init__(self, transport, szx=None, timeout=None):
        Endpoint.__init__(self, transport)
        self.szx = szx_for(transport.max_message_size) if szx is None else szx
        self.timeout = timeout  # ms for a whole exchange; default EXCHANGE_LIFETIME
        self.locks = {}  # remote -> Lock: NSTART = 1 outstanding interaction per server

    async def exchange(self, m, remote, timeout=None):
        """One request message -> its response message (piggybacked or separate)."""
        tf = self.transform
        if tf is not None:
            inner = m
            m = tf.outgoing_request(self, inner)
            m.type = inner.type
            m.token = inner.token
        key = (m.token, remote)
        slot = [None, None]  # [response, Event]: the Event is made only when a separate response is awaited
        self.waiters[key] = slot
        tmo = timeout or self.timeout or self.params.exchange_lifetime
        if self.task is None:
            self.start()
        t0 = ticks_ms()
        lk = self.locks.get(remote)
        if lk is None:
            if len(self.locks) > 8:
                self.locks.clear()
            lk = self.locks[remote] = asyncio.Lock()
        try:
            await lk.acquire()  # (not `async with`: that makes two more coroutines per request)
            try:
                m.mid = self.next_mid()
                if m.type == _CON:
                    a = await self.send_con(m, remote)
                    if a.type == _RST:
                        raise ResetError("request reset by %s" % (remote,))
                    if a.code != _EMPTY:
                        slot[0] = a
                else:
                    self.t.send(m.encode(), remote)
            finally:
                lk.release()
            if slot[0] is None:
                slot[1] = asyncio.Event()
                left = tmo - (ticks_ms() - t0)
                try:
                    if left <= 0:
                        raise asyncio.TimeoutError
                    await asyncio.wait_for(slot[1].wait(), left / 1000)
                except asyncio.TimeoutError:
                    raise RequestTimeout("no response within %d ms" % tmo)
            r = slot[0]
            if tf is not None:
                r = _inner(tf, self, inner, r)
                if r is None:
                    raise RefusedError("response refused")
            return r
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
            from coap import upload
            r, szx1 = await upload.send(self, method, remote, path, payload, psize, options, con, timeout, szx)
        else:
            m = Message(_CON if con else _NON, method, 0, token or os.urandom(4), payload).set_path(path)
            for o in options:
                m.add(o[0], o[1])
            if start is not None:
                m.add(_BLOCK2, ((start[0] + 1) << 4) | start[2])
            elif method == _GET and szx < 6:
                m.add(_BLOCK2, szx)  # block 0 at a smaller size: ask for smaller blocks up front
            r = await self.exchange(m, remote, timeout)
        b2 = r.opt(_BLOCK2)
        if b2 is None:
            if sink is not None and r.payload:
                sink(0, r.payload)
            return r
        from coap import block  # the rest of a Block2 body (RFC 7959)
        return await block.fetch(self, r, b2, method, remote, path, options, con, timeout, sink, start, etag)

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
        from coap.observe import observe
        return await observe(self, remote, path, callback, options)

