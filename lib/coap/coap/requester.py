# The client role of coap.endpoint.Endpoint (its base class; kept in its own module so each compiles in a small
# heap): CON retransmission, requests and their responses, Block-wise transfers both ways, Observe. The
# message layer and the server role are in coap/endpoint.py; everything here uses the endpoint's state.
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
_RST = const(3)
_EMPTY = const(0)
_GET = const(1)
_POST = const(2)
_PUT = const(3)
_DELETE = const(4)
_BLOCK2 = const(23)

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


def initial_timeout(params, r):
    """First retransmission timeout in ms: ACK_TIMEOUT * uniform[1, ACK_RANDOM_FACTOR], r in 0..65535."""
    t = params.ack_timeout
    return t + int(t * (params.ack_random_factor - 1) * r / 65535)



class Requester:
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
            await sleep_ms(tick)
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

    async def exchange(self, m, remote, timeout=None):
        """One request message -> its response message (piggybacked or separate)."""
        inner = m
        m.remote = remote  # a transform picks its per-peer state (an OSCORE context) by it
        if self.transform is not None:
            from coap.transform import request_out
            m = request_out(self, inner)
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
                left = tmo - ticks_diff(ticks_ms(), t0)
                try:
                    if left <= 0:
                        raise asyncio.TimeoutError
                    await asyncio.wait_for(slot[1].wait(), left / 1000)
                except asyncio.TimeoutError:
                    raise RequestTimeout("no response within %d ms" % tmo)
        finally:
            if self.waiters.get(key) is slot:
                del self.waiters[key]
        r = slot[0]
        if self.transform is not None:
            from coap.transform import response_in
            r = response_in(self, inner, r)
            if r is not None and type(r) is not Message:  # an awaitable: more exchanges first (coap/transform.py)
                r = await r
            if r is None:
                raise RefusedError("response refused")
        return r

    async def request(self, method, remote, path, payload=b"", options=(), con=True, timeout=None, sink=None,
                      token=None, start=None, etag=None, szx=None):
        """Send a request; follow Block2 to the end of the body (into `sink(offset, data)` when given,
        else into the returned message's payload) and send big payloads (bytes or a source with .size and
        .read(off, n)) with Block1. Returns the final response Message. Raises RequestTimeout,
        ResetError, RefusedError, block.BlockError."""
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

    def send_non(self, method, remote, path, payload=b"", options=(), token=None):
        """Send one NON request (through the transform) and wait for nothing: coap.occasional.send_non."""
        from coap.occasional import send_non
        return send_non(self, method, remote, path, payload, options, token)

    # get/put/post/delete return request()'s coroutine: await them.
    def get(self, remote, path, **kw):
        return self.request(_GET, remote, path, **kw)

    def put(self, remote, path, payload, **kw):
        return self.request(_PUT, remote, path, payload, **kw)

    def post(self, remote, path, payload, **kw):
        return self.request(_POST, remote, path, payload, **kw)

    def delete(self, remote, path, **kw):
        return self.request(_DELETE, remote, path, **kw)

    def observe(self, remote, path, callback, options=()):
        """Register (a coroutine: await it); the first response and every fresh notification go to
        callback(msg). Returns the Observation (obs.active is False when the server declined)."""
        from coap.observe import observe
        return observe(self, remote, path, callback, options)


