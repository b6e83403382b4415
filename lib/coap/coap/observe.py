# Observe (RFC 7641): notification ordering (sans-IO), the server's observer registry and notifications,
# the client's Observation. Loaded on first use: an observable resource, Client.observe().

import asyncio
import os
from coap import CoapError
from coap import block
from coap.msg import Message

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

_GET = const(1)
_RST = const(3)
_NON = const(1)
_CON = const(0)
_OBSERVE = const(6)
_BLOCK2 = const(23)
_ETAG = const(4)
_MAX_AGE = const(14)
_NOT_FOUND = const(132)

try:
    from time import ticks_diff, ticks_ms, ticks_add
except ImportError:
    from coap._cpython import ticks_diff, ticks_ms, ticks_add


def fresher(v1, t1, v2, t2):
    """RFC 7641 section 3.4: is a notification (v2 received at ms t2) newer than (v1 at t1)?"""
    if v1 is None:
        return True
    return (v1 < v2 and v2 - v1 < 0x800000) or (v1 > v2 and v1 - v2 > 0x800000) or ticks_diff(t2, t1) > 128000


class Observers:
    """Observers of one resource: (remote, token) -> [request, notifications_sent]. At most `limit`;
    the sequence number is 24-bit and shared by the resource, rising with every notification."""

    def __init__(self, limit=4, con_every=8):
        self.limit = limit
        self.con_every = con_every  # every n-th notification is CON, to learn if observers are still there
        self.reg = {}
        self.seq = 2  # registration responses carry a number too; start above RFC's reserved-for-ACK 0/1

    def __len__(self):
        return len(self.reg)


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
        self.req = None  # the registration request (inner, when the client has a transform)

    def __call__(self, m):
        # A notification routed by token; the client's transform (if any) sees it first. The endpoint
        # acknowledges a CON notification after this: an error of the callback is reported, not raised, so
        # that it is acknowledged all the same; a MemoryError is raised and the notification is not seen
        # (the ordering state back as it was), so that its retransmission is delivered.
        c = self.client
        seq = self.seq
        t = self.t
        try:
            if c.transform is not None:
                from coap.transform import response_in
                m = response_in(c, self.req, m)
                if m is None:
                    return
            self.deliver(m)
        except MemoryError:
            self.seq = seq
            self.t = t
            raise
        except Exception as e:
            c.on_error(e)

    def deliver(self, m):
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
            self.expires = ticks_add(now, 1000 * m.uint(_MAX_AGE, 60))
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
                                          sink=lambda off, data: body.extend(data),
                                          start=block.decode(first.opt(_BLOCK2)), etag=et)
            r.payload = body
            self.count += 1
            self.callback(r)
        except CoapError:
            pass

    def stale(self):
        """True when Max-Age has run out without a notification."""
        return self.active and ticks_diff(ticks_ms(), self.expires) > 0

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



async def observe(cli, remote, path, callback, options):
    """Client.observe(): register, then the first response and every fresh notification go to callback."""
    o = Observation(cli, remote, path, tuple(options), callback)
    m = o.req = Message(_CON, _GET, 0, o.token).set_path(path).add(_OBSERVE, 0)
    for x in o.options:
        m.add(x[0], x[1])
    r = await cli.exchange(m, remote)
    cli.waiters[(o.token, remote)] = o
    o.deliver(r)
    return o


def register(req, res):
    """Server side, a GET of an observable resource: Observe 0 registers (or refreshes) the requester, any
    other GET deregisters it; later blocks of a notification's body keep the registration."""
    o = res.observers
    b2 = req.opt(_BLOCK2)
    if b2 is None or int.from_bytes(b2, "big") >> 4 == 0:
        key = (req.remote, req.token)
        if req.uint(_OBSERVE) != 0:
            o.reg.pop(key, None)
        elif key in o.reg or len(o.reg) < o.limit:  # over the limit: answered as a plain GET
            o.reg[key] = [req, 0]


def annotate(req, res, r):
    """Server side: the registration response carries the resource's current sequence number."""
    o = res.observers
    if (req.remote, req.token) in o.reg and req.uint(_OBSERVE) == 0:
        r.add(_OBSERVE, o.seq)


def notify(srv, res):
    """Server side: the resource changed, send every observer a notification (NON, every n-th CON)."""
    o = res.observers
    if not o:
        return
    seq = o.seq = (o.seq + 1) & 0xFFFFFF
    for key, entry in list(o.reg.items()):
        req = entry[0]
        h = res.handlers.get(_GET)
        r = h(req)
        if r is not None and hasattr(r, "send"):
            asyncio.create_task(_later(srv, res, key, r, entry, seq))
        else:
            _notify(srv, res, key, entry, seq, r)


def gone(srv, res):
    """Server side, res is no longer served: every observer gets a 4.04 notification, ending its observation."""
    o = res.observers
    for key, entry in list(o.reg.items()):
        _notify(srv, res, key, entry, o.seq, Message(code=_NOT_FOUND))


def _notify(srv, res, key, entry, seq, r):
    from coap import serve
    remote = key[0]
    req = entry[0]
    r = serve.finish(srv, req, r)
    if r.code >= 96:  # an error ends the observation (RFC 7641 section 4.2)
        res.observers.reg.pop(key, None)
    elif not r.has(_OBSERVE):
        r.add(_OBSERVE, seq)
    r = serve.outer_response(srv, req, r)
    r.mid = srv.next_mid()
    entry[1] += 1
    if entry[1] % res.observers.con_every == 0:
        r.type = _CON
        asyncio.create_task(_later(srv, res, key, r))
    else:
        r.type = _NON
        for f in srv.rst_listeners:
            if type(f) is _NonNotifications:
                break
        else:
            f = _NonNotifications()
            srv.rst_listeners.append(f)
        if len(f) > 16:
            f.clear()
        f[(remote, r.mid)] = (res, key)
        srv.t.send(r.encode(), remote)


class _NonNotifications(dict):
    """The endpoint's RST listener for NON notifications: an RST to one ends its observation. Holds the
    last few (remote, mid) -> (resource, (remote, token)); registered with the first NON notification."""

    def __call__(self, rst):
        x = self.pop((rst.remote, rst.mid), None)
        if x is not None:
            x[0].observers.reg.pop(x[1], None)


async def _later(srv, res, key, r, entry=None, seq=0):
    # An async handler's notification (entry: its observer), once its coroutine r is done; or a CON
    # notification r, which ends the observation when it gets an RST or no ACK.
    if entry is not None:
        _notify(srv, res, key, entry, seq, await r)
        return
    try:
        a = await srv.send_con(r, key[0])
        if a.type != _RST:
            return
    except Exception:
        pass
    res.observers.reg.pop(key, None)  # RST or no ACK: the observer is gone
