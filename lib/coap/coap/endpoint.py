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
#   message layer   receive(): a plain GET to a served resource takes coap.serve.plain_get (no Message
#                   decoded for it); everything else is decoded, then dispatched by type: empty messages
#                   (ping, ACK/RST matching, RST listeners), requests to the server role (coap.serve.on_request:
#                   dedup first), _on_response (dedup, then token routing), the pending CONs' answers.
#                   The deduplication cache's operations (dd_find, dd_add, dd_store, dd_resend) are public
#                   for the server role.
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
from coap import CoapError
from coap.msg import decode, MessageError

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

try:
    from time import ticks_ms, ticks_us, ticks_diff, ticks_add
except ImportError:  # CPython
    from coap._cpython import ticks_ms, ticks_us, ticks_diff, ticks_add

_CON = const(0)
_ACK = const(2)
_RST = const(3)
_EMPTY = const(0)
_GET = const(1)
_POST = const(2)
_PUT = const(3)
_DELETE = const(4)

# Deduplication cache (RFC 7252 4.5): a ring of `dedup_limit` slots in arrival order, kept in one flat list
# (nothing is allocated per message, so long-lived answers never fragment the heap), and the answers' bytes
# in one preallocated ring buffer of 2 x max_message_size. Every entry lives EXCHANGE_LIFETIME, so arrival
# order is expiry order and the slot reused next is the oldest. The list starts with the cache's own state:
_DD_NEXT = const(0)   # the slot reused next
_DD_W = const(1)      # ring write offset
_DD_LAP = const(2)    # ring lap: bumped each time the writes wrap
_DD_RING = const(3)   # the ring (a memoryview of a bytearray), made with the first answer kept
_DD_END = const(4)    # where the slots end; before the first entry, minus the number of slots to make
_DD_HEAD = const(5)   # the slots follow, made with the first entry. Slot fields:
# offset 0: the Message ID, -1 when the slot is free
_D_REMOTE = const(1)
_D_EXP = const(2)     # ticks_ms when it expires
_D_STATE = const(3)   # 0 answer pending (duplicates ignored), 1 bytes in the ring, 2 a Block2 header in the
                      # ring whose payload is read again from the source, 3 an object too big for the ring
_D_OFF = const(4)     # ring offset; for state 3 unused
_D_LEN = const(5)
_D_LAP = const(6)     # ring lap the bytes were written in: valid while not overwritten by the next lap
_D_OBJ = const(7)     # state 2: (source, offset, n); state 3: the answer bytes
_D_N = const(8)       # fields per slot

# The fields of a pending CON (coap.requester keeps them) that _acked() sets.
_P_EV = const(0)
_P_MSG = const(1)
_P_REMOTE = const(3)


class RequestTimeout(CoapError):
    """No ACK/response within the retransmission window or the caller's timeout."""


class ResetError(CoapError):
    """The peer answered with RST."""


class RefusedError(CoapError):
    """The endpoint's transform refused the response (see coap/transform.py)."""


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
        self.dd = [_DD_HEAD, 0, 0, None, -dedup_limit]  # the deduplication cache (see _DD_*)
        self.dd_index = {}  # Message ID -> slot of its newest entry (stale when the slot has another MID)
        self.pending = {}   # mid -> pending list (see _P_*)
        self.waiters = {}   # (token, remote) -> a client's [response, Event] slot, or callable(msg)
        self.locks = {}     # remote -> waiting requests: NSTART = 1 outstanding CON per server (coap.requester)
        self.rst_listeners = []
        self.transform = None  # message-layer transform (OSCORE): see coap/transform.py
        self.resources = None  # path -> Resource; an endpoint that serves nothing rejects requests (RST)
        self.serve = None  # the coap.serve module once it serves
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
        # transport (OSError from recv) ends it. After answering a request the loop polls the transport for
        # the next one for up to its linger_us (sequential clients send it within microseconds), taking up
        # to 32 datagrams per wake-up before it parks in the event loop again.
        t = self.t
        linger = getattr(t, "linger_us", 0)
        while True:
            data = None
            try:
                data, remote = await t.recv()
                if self.receive(data, remote) and linger:
                    n = 32
                    t0 = ticks_us()
                    while n and ticks_diff(ticks_us(), t0) < linger:
                        x = t.recv_now()
                        if x is not None:
                            n -= 1
                            if not self.receive(x[0], x[1]):
                                break  # a response: let the task waiting for it run
                            t0 = ticks_us()
            except OSError as e:
                if data is None:
                    return
                self.on_error(e)
            except MemoryError:
                import gc
                gc.collect()
            except Exception as e:
                self.on_error(e)

    # --- message layer

    def send_empty(self, mtype, mid, remote):
        """An empty ACK or RST (or ping) with this Message ID."""
        self.t.send(bytes((0x40 | (mtype << 4), 0, mid >> 8, mid & 255)), remote)

    def receive(self, data, remote):
        """One datagram from remote: decode, then dispatch by type and code. True for a request."""
        if type(data) is not bytes:
            data = bytes(data)  # decoded messages are views: own the transport's reused buffer
        n = len(data)
        if n > self.t.max_message_size:
            if n >= 4 and data[0] >> 4 == 4:  # a CON we could not take whole
                self.send_empty(_RST, (data[2] << 8) | data[3], remote)
            return
        if n > 3 and data[1] == _GET and self.serve is not None and self.transform is None and \
                self.serve.plain_get(self, data, n, remote):
            return True
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
                self._acked(m)
            elif mt == _RST:
                self._acked(m)
                for f in self.rst_listeners:
                    f(m)
        elif code < 32:
            if self.resources is None:  # serves nothing: reject (RFC 7252 4.2)
                if m.type == _CON:
                    self.send_empty(_RST, m.mid, remote)
            else:
                self.serve.on_request(self, m)
            return True
        else:
            self._on_response(m)

    def _acked(self, m):
        # An ACK or RST ends the pending CON it answers (same MID, same remote).
        p = self.pending.get(m.mid)
        if p is not None and p[_P_REMOTE] == m.remote:
            p[_P_MSG] = m
            if p[_P_EV]:
                p[_P_EV].set()


    def _on_response(self, m):
        mt = m.type
        if mt == _ACK:
            self._acked(m)
        elif mt == _RST:
            self._acked(m)
            return
        else:  # a separate response or a notification: the peer's own MID, deduplicated
            now = ticks_ms()
            s = self.dd_find(m.remote, m.mid, now)
            if s >= 0 and self.dd_resend(s, mt):
                return
            s = self.dd_add(m.remote, m.mid, now)
        w = self.waiters.get((m.token, m.remote))
        if w is None:
            if mt != _ACK:  # unknown token: tell the sender to stop (also ends an unwanted observation)
                self.send_empty(_RST, m.mid, m.remote)
                self.dd_store(s, bytes((0x70, 0, m.mid >> 8, m.mid & 255)))
            return
        if mt == _CON:
            self.send_empty(_ACK, m.mid, m.remote)
            self.dd_store(s, bytes((0x60, 0, m.mid >> 8, m.mid & 255)))
        # Token routing: a client's exchange slot [response, Event], or a callable (an Observation).
        if type(w) is list:
            w[0] = m
            if w[1]:
                w[1].set()
        else:
            w(m)

    # --- deduplication

    def dd_find(self, remote, mid, t):
        """The live slot of (remote, mid) at ticks_ms t, or -1."""
        d = self.dd
        s = self.dd_index.get(mid, -1)
        if s >= 0 and (d[s] != mid or d[s + _D_REMOTE] != remote):  # reused since, or the same MID from
            s = -1                                                    # another peer: look at every slot
            for i in range(_DD_HEAD, len(d), _D_N):
                if d[i] == mid and d[i + _D_REMOTE] == remote:
                    s = i
                    break
        if s >= 0 and ticks_diff(d[s + _D_EXP], t) <= 0:
            return -1
        return s

    def dd_add(self, remote, mid, t):
        """A new entry for (remote, mid) at ticks_ms t, answer pending; returns its slot."""
        d = self.dd
        if d[_DD_END] < 0:  # every slot at once, with the first entry: never regrown
            d.extend([-1, None, 0, 0, 0, 0, 0, None] * -d[_DD_END])  # free slots
            d[_DD_END] = len(d)
        s = d[_DD_NEXT]
        d[s] = mid
        d[s + _D_REMOTE] = remote
        d[s + _D_EXP] = ticks_add(t, self.params.exchange_lifetime)
        d[s + _D_STATE] = 0
        d[s + _D_OBJ] = None
        # The index keeps the entries of reused slots until the ring has gone round once, then it is made
        # again from the live slots (oldest first, so the newest entry of a MID wins): deleting from a dict
        # leaves markers that, under a steady stream of new MIDs, make every miss scan the whole table.
        if s + _D_N < d[_DD_END]:
            d[_DD_NEXT] = s + _D_N
            self.dd_index[mid] = s
        else:
            d[_DD_NEXT] = _DD_HEAD
            ix = self.dd_index = {}
            for i in range(_DD_HEAD, s + _D_N, _D_N):
                if d[i] >= 0:
                    ix[d[i]] = i
        return s

    def dd_room(self, s, n, state=1, src=None):
        """Room in the ring for the n-byte answer of slot s: a memoryview the caller writes the answer into
        (None when n does not fit the ring)."""
        d = self.dd
        ring = d[_DD_RING]
        if ring is None:
            ring = d[_DD_RING] = memoryview(bytearray(2 * self.t.max_message_size))
        size = len(ring)
        if n > size:
            return None
        w = d[_DD_W]
        if w + n > size:
            w = 0
            d[_DD_LAP] = (d[_DD_LAP] + 1) & 0xFFFF
        d[s + _D_STATE] = state
        d[s + _D_OFF] = w
        d[s + _D_LEN] = n
        d[s + _D_LAP] = d[_DD_LAP]
        d[s + _D_OBJ] = src
        d[_DD_W] = w + n
        return ring[w:w + n]

    def dd_store(self, s, data, state=1, src=None):
        # The answer's bytes go into the ring; one bigger than the ring is kept as an object.
        v = self.dd_room(s, len(data), state, src)
        if v is None:
            d = self.dd
            d[s + _D_STATE] = 3
            d[s + _D_OBJ] = data  # an answer is never changed after it is sent: no copy
        else:
            v[:] = data

    def dd_resend(self, s, mtype):
        # A duplicate of slot s: a CON gets the stored answer again, a NON nothing. False when the answer
        # was lost to the ring: the message is then taken as new (liveness over exactly-once).
        d = self.dd
        st = d[s + _D_STATE]
        if st == 0:
            return True  # still being answered
        if st == 3:
            v = d[s + _D_OBJ]
        else:
            off = d[s + _D_OFF]
            lap = (d[_DD_LAP] - d[s + _D_LAP]) & 0xFFFF
            if lap > 1 or (lap == 1 and off < d[_DD_W]):
                return False  # the ring has gone round over it
            v = d[_DD_RING][off:off + d[s + _D_LEN]]
            if st == 2:  # a Block2 block: read it again from the same source
                src, soff, n = d[s + _D_OBJ]
                p = src.read(soff, n)
                if p:
                    v = bytes(v) + b"\xff" + p
        if mtype == _CON:
            self.t.send(v, d[s + _D_REMOTE])
        return True

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
        return requester.send_con(self, m, remote)

    def exchange(self, m, remote, timeout=None):
        """One request message -> its response message, piggybacked or separate (a coroutine)."""
        from coap import requester
        return requester.exchange(self, m, remote, timeout)

    def request(self, method, remote, path, payload=b"", **kw):
        """Send a request (a coroutine: await it); follow Block2 to the end of the body and send big payloads
        with Block1. Keywords and what it returns and raises: coap.requester.request."""
        from coap import requester
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
