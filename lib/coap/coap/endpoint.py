# One CoAP endpoint (RFC 7252) in both roles over one transport (coap/transport.py), the way aiocoap's Context
# works: it serves resources and sends requests at once, with one Message ID counter, one deduplication cache,
# one token table and one retransmission timer, so a request to a peer and a request from that peer never
# confuse each other. coap.server.Server and coap.client.Client are thin conveniences over it.
#
#   ep = Endpoint(UDPTransport(("0.0.0.0", 5683))).start()
#   ep.route("/health", get=lambda req: b"ok")                 # server role
#   ep.unroute("/health")                                      # not served any more (4.04)
#   r = await ep.get(("192.0.2.1", 5683), "/suit/payload")     # client role, same socket
#   ep.send_non(POST, ("192.0.2.1", 5683), "/trigger", b"hi")  # a NON request, no answer awaited
#
# Layers, bottom up:
#   message layer   receive(): a plain GET to a served resource takes coap.serve.burst's lean path (no
#                   Message decoded for it); everything else goes to dispatch(): decoded, then by type: empty messages
#                   (ping, ACK/RST matching, RST listeners), requests to the server role (coap.serve.on_request:
#                   dedup first), responses to the client role (coap.requester.on_response: dedup, then
#                   token routing), the pending CONs' answers (acked).
#                   The deduplication cache's operations are coap.dedup's (find, add, room, store,
#                   resend), loaded with the server role or the first CON/NON response.
#   transform       endpoint.transform (OSCORE) between the message layer and request/response handling:
#                   the interface is documented in coap/transform.py.
#   server role     coap/serve.py, loaded with the first resource (add, route; unroute removes one):
#                   Resource, on_request(),
#                   respond() (sans-IO: request -> response), finish(), reply(), ack(), outer_response();
#                   optional parts load on first use: Observe (coap.observe), Block2 (coap.block), Block1
#                   (coap.upload), separate responses (coap.separate), /.well-known/core (coap.linkformat).
#   client role     coap/requester.py, loaded with the first request: send_con() with one timer task
#                   retransmitting every pending CON, exchange() (one request, its response), request()
#                   (Block-wise both ways); observe() (coap.observe); ping() and send_non() (one NON
#                   request, through the transform, sent without waiting for an answer) in coap.occasional.
#
# rst_listeners is a list of callables f(msg) called with every RST the endpoint receives (coap.observe uses
# it to end an observation). Handlers and what they may return: coap/serve.py.
import asyncio
import os
from coap.msg import decode, MessageError

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

try:  # suit.ota takes these from here
    from time import ticks_ms, ticks_diff  # noqa: F401
except ImportError:  # CPython
    from coap._cpython import ticks_ms, ticks_diff  # noqa: F401

_CON = const(0)
_ACK = const(2)
_RST = const(3)
_EMPTY = const(0)
_GET = const(1)
_POST = const(2)
_PUT = const(3)
_DELETE = const(4)

# The deduplication cache (RFC 7252 4.5), self.dd and self.dd_index, is coap.dedup's: loaded with the server
# role and by the first CON or NON response; an endpoint that only requests (piggybacked answers) never holds
# its code. dd starts with the cache's own state: _DD_HEAD (where slots begin), ring write offset, lap, ring,
# and minus the number of slots to make with the first entry.
_DD_HEAD = const(5)

# The fields of a pending CON (coap.requester keeps them) that acked() sets.
_P_EV = const(0)
_P_MSG = const(1)
_P_REMOTE = const(3)


def __getattr__(name):
    # RequestTimeout, ResetError and RefusedError (the client role's failures) are coap.requester's, made
    # with it: a class costs ~230 B of heap, which an endpoint that only serves never spends.
    from coap import requester
    if name in ("RequestTimeout", "ResetError", "RefusedError"):
        return getattr(requester, name)
    raise AttributeError(name)


class Endpoint:
    def __init__(self, transport, szx=None, timeout=None, dedup_limit=32, max_uploads=4):
        self.t = transport
        self.params = p = transport.params
        self.mid = int.from_bytes(os.urandom(2), "big")
        if szx is None:  # the largest block (plus 128 bytes of header and options) the transport carries
            szx = 6
            while szx and (16 << szx) + 128 > transport.max_message_size:
                szx -= 1
        self.szx = szx
        self.timeout = timeout  # ms for a whole client exchange; default EXCHANGE_LIFETIME
        self.dd = [_DD_HEAD, 0, 0, None, -dedup_limit]  # the deduplication cache (coap.dedup)
        # Per bucket (a MID's low byte) the slot of its newest entry, 0 for none (coap.dedup): a slot's offset
        # fits a byte up to 32 slots.
        self.dd_index = bytearray(256) if dedup_limit <= 32 else [0] * 256
        self.pending = {}   # mid -> pending list (see _P_*)
        self.waiters = {}   # (token, remote) -> a client's [response, Event] slot, or callable(msg)
        self.locks = {}     # remote -> waiting requests: NSTART = 1 outstanding CON per server (coap.requester)
        self.rst_listeners = []
        self.transform = None  # message-layer transform (OSCORE): see coap/transform.py
        self.resources = None  # path -> Resource; an endpoint that serves nothing rejects requests (RST)
        self.serve = None  # the coap.serve module once it serves
        self.rq = None  # the coap.requester module once it requests
        self.uploads = {}  # (remote, path) -> an upload in progress (coap.upload)
        self.max_uploads = max_uploads
        self.ack_delay = p.ack_timeout // 4  # after this an async handler's CON gets an empty ACK
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

    def on_error(self, e):
        """Called with every exception a handler or a bad datagram raised (the endpoint goes on)."""

    async def _loop(self):
        # A board never stops answering: a MemoryError while receiving or handling one datagram drops that
        # datagram (collect, go on); any other exception is reported and the loop goes on. Only a closed
        # transport (OSError while waiting) ends it. A transport with a `readable` awaitable (UDP on
        # MicroPython) is read by _take through recv_now, so that no datagram is ever on this long-lived
        # coroutine's stack: a stale slot there would keep the last one alive while it waits.
        t = self.t
        rd = getattr(t, "readable", None)
        while True:
            x = False
            try:
                if rd is None:
                    x = await t.recv()
                else:
                    await rd
                    x = None
                self._take(x)
            except OSError as e:
                if x is False:  # from the transport while waiting: closed
                    return
                self.on_error(e)
            except MemoryError:
                import gc
                gc.collect()
            except Exception as e:
                self.on_error(e)

    def _take(self, x):
        # One wake-up: x is what recv() returned, or None (recv_now() has the datagram). A serving endpoint
        # gives it to coap.serve.burst, which then answers what a sequential client sends next within the
        # transport's linger_us (see there).
        t = self.t
        if x is None:
            x = t.recv_now()
            if x is None:
                return
        s = self.serve
        if s is None:
            self.receive(x[0], x[1])
        else:
            s.burst(self, x[0], x[1], getattr(t, "linger_us", 0))

    # --- message layer

    def send_empty(self, mtype, mid, remote):
        """An empty ACK or RST (or ping) with this Message ID."""
        self.t.send(bytes((0x40 | (mtype << 4), 0, mid >> 8, mid & 255)), remote)

    def receive(self, data, remote, lean=True):
        """One datagram from remote: decode, then dispatch by type and code. True for a request. A serving
        endpoint's plain GETs take their lean path (coap.serve.burst) unless lean is False."""
        if lean and self.serve is not None:
            return self.serve.burst(self, data, remote, 0)
        if type(data) is not bytes:
            data = bytes(data)  # decoded messages are views: own the transport's reused buffer
        n = len(data)
        if n > self.t.max_message_size:
            if n >= 4 and data[0] >> 4 == 4:  # a CON we could not take whole
                self.send_empty(_RST, (data[2] << 8) | data[3], remote)
            return
        try:
            m = decode(data)
        except MessageError as e:
            if e.type == _CON:  # RFC 7252 4.2: reject a malformed CON with RST; others are ignored
                self.send_empty(_RST, e.mid, remote)
            return
        m.remote = remote
        code = m.code
        if code == _EMPTY:  # ping, or an ACK/RST ending a pending CON (RST listeners hear every RST)
            mt = m.type
            if mt == _CON:
                self.send_empty(_RST, m.mid, remote)
            elif mt == _ACK:
                self.acked(m)
            elif mt == _RST:
                self.acked(m)
                for f in self.rst_listeners:
                    f(m)
        elif code < 32:
            if self.resources is None:  # serves nothing: reject (RFC 7252 4.2)
                if m.type == _CON:
                    self.send_empty(_RST, m.mid, remote)
            else:
                self.serve.on_request(self, m)
            return True
        elif self.rq is not None:  # a response: the client role's
            self.rq.on_response(self, m)
        elif m.type < _ACK:  # a CON or NON response to an endpoint that never requested: stop it
            self.send_empty(_RST, m.mid, remote)

    def acked(self, m):
        """An ACK (empty or with a response) or RST: ends the pending CON it answers (same MID and remote)."""
        p = self.pending.get(m.mid)
        if p is not None and p[_P_REMOTE] == m.remote:
            p[_P_MSG] = m
            if p[_P_EV]:
                p[_P_EV].set()

    # --- server role (its code is coap/serve.py, loaded with the first resource)

    def add(self, resource):
        if self.resources is None:
            from coap import serve
            self.serve = serve
            self.resources = {}
        self.resources[resource.path] = resource
        return resource

    def route(self, path, **kw):
        from coap.serve import Resource
        return self.add(Resource(path, **kw))

    def unroute(self, path):
        """Stop serving path (its requests then get 4.04): returns the removed Resource, or None. Its
        observers get a 4.04 notification, which ends their observations; its unfinished uploads are dropped."""
        r = self.resources
        res = r.pop(path if path.startswith("/") else "/" + path, None) if r else None
        if res is not None:
            from coap.occasional import unroute
            unroute(self, res)
        return res

    def notify(self, resource):
        """The resource changed: send every observer a notification (NON, every n-th CON)."""
        if resource.observers:
            from coap.observe import notify
            notify(self, resource)

    # --- client role (its code is coap/requester.py, loaded with the first request)

    def send_con(self, m, remote):
        """Send a CON with retransmission (a coroutine): the ACK or RST message. Raises RequestTimeout."""
        from coap import requester
        self.rq = requester
        return requester.send_con(self, m, remote)

    def exchange(self, m, remote, timeout=None):
        """One request message -> its response message, piggybacked or separate (a coroutine)."""
        from coap import requester
        self.rq = requester
        return requester.exchange(self, m, remote, timeout)

    def request(self, method, remote, path, payload=b"", **kw):
        """Send a request (a coroutine: await it); follow Block2 to the end of the body and send big payloads
        with Block1. Keywords and what it returns and raises: coap.requester.request."""
        from coap import requester
        self.rq = requester
        return requester.request(self, method, remote, path, payload, **kw)

    def ping(self, remote):
        """CoAP ping (a coroutine): an empty CON; True when the peer answers RST. Raises RequestTimeout."""
        from coap.occasional import ping
        return ping(self, remote)

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
