# One CoAP endpoint (RFC 7252) in both roles over one transport (coap/transport.py), the way aiocoap's Context
# works: it serves resources and sends requests at once, with one Message ID counter, one deduplication cache,
# one token table and one retransmission timer, so a request to a peer and a request from that peer never
# confuse each other. coap.server.Server and coap.client.Client are thin conveniences over it.
#
#   ep = Endpoint(UDPTransport(("0.0.0.0", 5683))).start()
#   ep.route("/health", get=lambda req: b"ok")                 # server role
#   r = await ep.get(("192.0.2.1", 5683), "/suit/payload")     # client role, same socket
#
# Layers, bottom up:
#   message layer   receive() -> _dispatch(): _on_empty (ping, ACK/RST matching, RST listeners),
#                   _on_request (dedup, then the server role), _on_response (dedup, token routing);
#                   send_con() with one timer task retransmitting every pending CON.
#   transform       endpoint.transform (OSCORE) between the message layer and request/response handling:
#                   the interface is documented in coap/transform.py.
#   server role     resources, respond() (sans-IO: request -> response), finish(), reply(); optional parts
#                   load on first use: Observe (coap.observe), Block2 (coap.block), Block1 (coap.upload),
#                   separate responses (coap.separate), /.well-known/core (coap.linkformat).
#   client role     exchange() (one request, its response), request() (Block-wise both ways), observe().
#
# Public operations for the optional parts and the layers above (never private names): send_empty(),
# ack(), finish(), reply(), outer_response(), send_con(), and rst_listeners, a list of callables f(msg)
# called with every RST the endpoint receives (coap.observe uses it to end an observation).
#
# A handler is handler(request) -> response, sync or async. The response may be a Message (code, options,
# payload), a (code, payload) tuple, bytes/str (2.05 Content) or None (2.04 Changed for PUT/POST, else 2.05).
# A payload may be a source for big bodies: any object with .size and .read(offset, n) (and optionally
# .etag); the endpoint then reads just the block asked for.
import asyncio
import os
from coap import CoapError
from coap.msg import Message, decode, MessageError
from coap.requester import Requester, RequestTimeout, ResetError, RefusedError, initial_timeout  # noqa: F401

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

try:
    from time import ticks_ms, ticks_diff, ticks_add
except ImportError:  # CPython
    from coap._cpython import ticks_ms, ticks_diff, ticks_add

_CON = const(0)
_NON = const(1)
_ACK = const(2)
_RST = const(3)
_EMPTY = const(0)
_GET = const(1)
_POST = const(2)
_PUT = const(3)
_DELETE = const(4)
_FETCH = const(5)
_CHANGED = const(68)
_CONTENT = const(69)
_BAD_REQUEST = const(128)
_BAD_OPTION = const(130)
_NOT_FOUND = const(132)
_NOT_ALLOWED = const(133)
_SERVER_ERROR = const(160)
_OBSERVE = const(6)
_URI_PATH = const(11)
_MAX_AGE = const(14)
_BLOCK2 = const(23)
_BLOCK1 = const(27)

# Deduplication cache (RFC 7252 4.5): a ring of `dedup_limit` slots in arrival order, kept in one flat list
# (nothing is allocated per message, so long-lived answers never fragment the heap), and the answers' bytes
# in one preallocated ring buffer of 2 x max_message_size. Every entry lives EXCHANGE_LIFETIME, so arrival
# order is expiry order and the slot reused next is the oldest. Slot fields:
# The pending-CON fields coap.requester keeps (see there) that _acked() sets.
_P_EV = const(0)
_P_MSG = const(1)
_P_REMOTE = const(3)

_D_MID = const(0)     # Message ID, -1 when the slot is free
_D_REMOTE = const(1)
_D_EXP = const(2)     # ticks_ms when it expires
_D_STATE = const(3)   # 0 answer pending (duplicates ignored), 1 bytes in the ring, 2 a Block2 header in the
                      # ring whose payload is read again from the source, 3 an object too big for the ring
_D_OFF = const(4)     # ring offset; for state 3 unused
_D_LEN = const(5)
_D_LAP = const(6)     # ring lap the bytes were written in: valid while not overwritten by the next lap
_D_OBJ = const(7)     # state 2: (source, offset, n); state 3: the answer bytes
_D_N = const(8)       # fields per slot
_FREE = (-1, None, 0, 0, 0, 0, 0, None)


def szx_for(max_message_size, overhead=128):
    """Largest block size exponent whose block (plus header/options room) fits the transport."""
    s = 6
    while s and (16 << s) + overhead > max_message_size:
        s -= 1
    return s


class Resource:
    """A path with per-method handlers. max_body bounds a Block1 body; upload=factory(req) streams Block1
    bodies instead of assembling them: factory is called with the first block's request and returns a sink
    callable sink(offset, data); after the last block the method's handler runs with req.upload = that sink
    and an empty req.payload. observable=True makes GET observable (RFC 7641)."""

    def __init__(self, path, get=None, put=None, post=None, delete=None, fetch=None, observable=False,
                 rt=None, if_=None, ct=None, title=None, max_age=None, max_body=8192, observer_limit=4,
                 upload=None):
        self.path = path if path.startswith("/") else "/" + path
        self.handlers = {_GET: get, _PUT: put, _POST: post, _DELETE: delete, _FETCH: fetch}
        self.rt = rt
        self.if_ = if_
        self.ct = ct
        self.title = title
        self.max_age = max_age
        self.max_body = max_body
        self.upload = upload
        self.observers = None
        if observable:
            from coap.observe import Observers
            self.observers = Observers(observer_limit)


class Endpoint(Requester):
    def __init__(self, transport, szx=None, timeout=None, dedup_limit=32, max_uploads=4):
        self.t = transport
        self.params = p = transport.params
        self.mid = int.from_bytes(os.urandom(2), "big")
        self.szx = szx_for(transport.max_message_size) if szx is None else szx
        self.timeout = timeout  # ms for a whole client exchange; default EXCHANGE_LIFETIME
        self.dd = []  # the slots, grown up to dd_cap, then reused in a ring
        self.dd_cap = dedup_limit * _D_N
        self.dd_index = {}  # Message ID -> slot of its newest entry
        self.dd_next = 0
        self.dd_ring = None  # made with the first answer kept: 2 x max_message_size
        self.dd_w = 0
        self.dd_lap = 0
        self.pending = {}   # mid -> pending list (see _P_*)
        self.waiters = {}   # (token, remote) -> a client's [response, Event] slot, or callable(msg)
        self.locks = {}     # remote -> Lock: NSTART = 1 outstanding interaction per server
        self.rst_listeners = []
        self.transform = None  # message-layer transform (OSCORE): see coap/transform.py
        self.resources = None  # path -> Resource; an endpoint that serves nothing rejects requests (RST)
        self.uploads = {}  # (remote, path) -> coap.upload.Assembler
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
        # transport (OSError from recv) ends it.
        t = self.t
        while True:
            data = None
            try:
                data, remote = await t.recv()
                self.receive(data, remote)
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
        """One datagram from remote: decode, then dispatch by type and code."""
        if type(data) is not bytes:
            data = bytes(data)  # decoded messages are views: own the transport's reused buffer
        if len(data) > self.t.max_message_size:
            if len(data) >= 4 and data[0] >> 4 == 4:  # a CON we could not take whole
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
        if code == _EMPTY:
            self._on_empty(m)
        elif code < 32:
            self._on_request(m)
        else:
            self._on_response(m)

    def _on_empty(self, m):
        mt = m.type
        if mt == _CON:  # CoAP ping
            self.send_empty(_RST, m.mid, m.remote)
        elif mt == _ACK:
            self._acked(m)
        elif mt == _RST:
            self._acked(m)
            for f in self.rst_listeners:
                f(m)

    def _acked(self, m):
        # An ACK or RST ends the pending CON it answers (same MID, same remote).
        p = self.pending.get(m.mid)
        if p is not None and p[_P_REMOTE] == m.remote:
            p[_P_MSG] = m
            if p[_P_EV]:
                p[_P_EV].set()


    def _on_request(self, m):
        now = ticks_ms()
        s = self._dd_find(m.remote, m.mid, now)
        if s >= 0 and self._dd_resend(s, m.type):  # a duplicate: answered as before, the handler not again
            return
        s = self._dd_add(m.remote, m.mid, now)
        if self.resources is None:  # serves nothing
            if m.type == _CON:
                self.ack(m, _RST)
            return
        try:
            self.on_request(m)
        except MemoryError:  # unanswered: forget it, so its retransmission is taken as new
            d = self.dd
            if self.dd_index.get(d[s]) == s:
                del self.dd_index[d[s]]
            d[s] = -1
            d[s + _D_OBJ] = None
            raise

    def _on_response(self, m):
        mt = m.type
        if mt == _ACK:
            self._acked(m)
        elif mt == _RST:
            self._acked(m)
            return
        else:  # a separate response or a notification: the peer's own MID, deduplicated
            now = ticks_ms()
            s = self._dd_find(m.remote, m.mid, now)
            if s >= 0 and self._dd_resend(s, mt):
                return
            s = self._dd_add(m.remote, m.mid, now)
        w = self.waiters.get((m.token, m.remote))
        if w is None:
            if mt != _ACK:  # unknown token: tell the sender to stop (also ends an unwanted observation)
                self.send_empty(_RST, m.mid, m.remote)
                self._dd_store(s, bytes((0x70, 0, m.mid >> 8, m.mid & 255)))
            return
        if mt == _CON:
            self.send_empty(_ACK, m.mid, m.remote)
            self._dd_store(s, bytes((0x60, 0, m.mid >> 8, m.mid & 255)))
        self._route(w, m)

    def _route(self, w, m):
        # Token routing: a client's exchange slot [response, Event], or a callable (an Observation).
        if type(w) is list:
            w[0] = m
            if w[1]:
                w[1].set()
        else:
            w(m)

    # --- deduplication

    def _dd_find(self, remote, mid, now):
        """The live slot of (remote, mid), or -1."""
        d = self.dd
        s = self.dd_index.get(mid, -1)
        if s >= 0 and d[s + _D_REMOTE] != remote:  # the same MID from another peer: look at every slot
            s = -1
            for i in range(0, len(d), _D_N):
                if d[i] == mid and d[i + _D_REMOTE] == remote:
                    s = i
                    break
        if s >= 0 and ticks_diff(d[s + _D_EXP], now) <= 0:
            return -1
        return s

    def _dd_add(self, remote, mid, now):
        """A new entry for (remote, mid), answer pending; returns its slot."""
        d = self.dd
        s = len(d)
        if s < self.dd_cap:
            d.extend(_FREE)
        else:
            s = self.dd_next
            self.dd_next = 0 if s + _D_N >= len(d) else s + _D_N
            old = d[s]
            if old >= 0 and self.dd_index.get(old) == s:
                del self.dd_index[old]
        d[s] = mid
        d[s + _D_REMOTE] = remote
        d[s + _D_EXP] = ticks_add(now, self.params.exchange_lifetime)
        d[s + _D_STATE] = 0
        d[s + _D_OBJ] = None
        self.dd_index[mid] = s
        return s

    def _dd_store(self, s, data, state=1, obj=None):
        # The answer's bytes go into the ring; one bigger than the ring is kept as an object.
        d = self.dd
        n = len(data)
        ring = self.dd_ring
        if ring is None:
            ring = self.dd_ring = bytearray(2 * self.t.max_message_size)
        if n > len(ring):
            d[s + _D_STATE] = 3
            d[s + _D_OBJ] = data  # an answer is never changed after it is sent: no copy
            return
        w = self.dd_w
        if w + n > len(ring):
            w = 0
            self.dd_lap = (self.dd_lap + 1) & 0xFFFF
        ring[w:w + n] = data
        d[s + _D_STATE] = state
        d[s + _D_OFF] = w
        d[s + _D_LEN] = n
        d[s + _D_LAP] = self.dd_lap
        d[s + _D_OBJ] = obj
        self.dd_w = w + n

    def _dd_answer(self, s):
        # The stored answer of slot s as bytes-like, or None (pending, or overwritten in the ring).
        d = self.dd
        st = d[s + _D_STATE]
        if st == 3:
            return d[s + _D_OBJ]
        off = d[s + _D_OFF]
        lap = (self.dd_lap - d[s + _D_LAP]) & 0xFFFF
        if lap > 1 or (lap == 1 and off < self.dd_w):
            return None  # the ring has gone round over it
        h = memoryview(self.dd_ring)[off:off + d[s + _D_LEN]]
        if st == 2:  # a Block2 block: read it again from the same source
            src, soff, n = d[s + _D_OBJ]
            p = src.read(soff, n)
            return bytes(h) + b"\xff" + p if p else h
        return h

    def _dd_resend(self, s, mtype):
        # A duplicate of slot s: a CON gets the stored answer again, a NON nothing. False when the answer
        # was lost to the ring: the message is then taken as new (liveness over exactly-once).
        if self.dd[s + _D_STATE] == 0:
            return True  # still being answered
        v = self._dd_answer(s)
        if v is None:
            return False
        if mtype == _CON:
            self.t.send(v, self.dd[s + _D_REMOTE])
        return True

    def ack(self, req, mtype=_ACK):
        """Send the empty ACK (or RST) for a CON request and keep it for its duplicates."""
        mid = req.mid
        self.send_empty(mtype, mid, req.remote)
        s = self._dd_find(req.remote, mid, ticks_ms())
        if s >= 0:
            self._dd_store(s, bytes((0x40 | (mtype << 4), 0, mid >> 8, mid & 255)))

    # --- server role

    def add(self, resource):
        if self.resources is None:
            self.resources = {}
        self.resources[resource.path] = resource
        return resource

    def route(self, path, **kw):
        return self.add(Resource(path, **kw))

    def on_request(self, req):
        """A new request (not a duplicate): through the transform, then respond() and reply()."""
        if self.transform is not None:
            from coap.transform import request_in
            req = request_in(self, req)
            if req is None:  # refused, and answered as the transform said
                return
        try:
            r = self.respond(req)
            if r is None:  # a NON to reject (RFC 7252 5.4.1): RST
                self.send_empty(_RST, req.mid, req.remote)
                return
            if hasattr(r, "send"):  # a coroutine: answer later
                from coap.separate import answer_later
                asyncio.create_task(answer_later(self, req, r))
                return
        except MemoryError:
            raise
        except Exception as e:  # never leave a CON unanswered (its duplicates would be ignored)
            self.on_error(e)
            r = Message(code=_SERVER_ERROR)
        self.reply(req, r)

    def respond(self, req):
        """Request -> response Message (or a coroutine for async handlers; None: reject the NON request with
        RST); no I/O."""
        try:
            path = _path(req)
        except MessageError:
            if req.type == _NON:
                return None
            return Message(code=_BAD_OPTION, payload=b"unknown critical option")
        except UnicodeError:
            return Message(code=_BAD_REQUEST, payload=b"Uri-Path not UTF-8")
        res = self.resources.get(path)
        if res is None:
            if path == "/.well-known/core" and req.code == _GET:
                from coap.linkformat import well_known
                return self.finish(req, well_known(self, req))
            return Message(code=_NOT_FOUND)
        req.resource = res
        h = res.handlers.get(req.code)
        if h is None:
            return Message(code=_NOT_ALLOWED)
        try:
            b1 = req.opt(_BLOCK1)
            if b1 is not None:
                from coap import upload
                r = upload.receive(self, req, res, b1)
                if r is not None:
                    return r
            o = res.observers
            if o is not None and req.code == _GET:
                b2 = req.opt(_BLOCK2)
                if b2 is None or int.from_bytes(b2, "big") >> 4 == 0:  # later blocks of a notification keep it
                    if req.uint(_OBSERVE) == 0:
                        o.add(req.remote, req.token, req)  # over the limit: answered as a plain GET
                    else:
                        o.remove(req.remote, req.token)
            r = h(req)
            if r is not None and hasattr(r, "send"):
                return r  # async handler: coap.separate awaits it and finishes the response
            return self.finish(req, r)
        except CoapError as e:  # a malformed option value (4.00) or block option (4.02)
            return Message(code=_BAD_REQUEST if isinstance(e, MessageError) else _BAD_OPTION,
                           payload=str(e).encode())
        except MemoryError:
            raise
        except Exception as e:
            self.on_error(e)
            return Message(code=_SERVER_ERROR)

    def finish(self, req, r):
        """A handler's result as the response Message: defaults, Block1 echo, Observe, Max-Age, Block2."""
        if r is None:
            r = Message(code=_CHANGED if req.code == _PUT or req.code == _POST else _CONTENT)
        else:
            t = type(r)
            if t is tuple:
                r = Message(code=r[0], payload=r[1])
            elif t is bytes or t is bytearray or t is memoryview:
                r = Message(code=_CONTENT, payload=r)
            elif t is str:
                r = Message(code=_CONTENT, payload=r.encode())
            elif t is not Message:
                r = Message(code=_CONTENT, payload=r)  # a source
        b1 = getattr(req, "block1", None)
        if b1 is not None:
            r.add(_BLOCK1, b1)
        res = getattr(req, "resource", None)
        if res is not None and r.code < 96:
            o = res.observers
            if o is not None and (req.remote, req.token) in o.reg and req.uint(_OBSERVE) == 0:
                r.add(_OBSERVE, o.seq)
            if res.max_age is not None and not r.has(_MAX_AGE):
                r.add(_MAX_AGE, res.max_age)
        p = r.payload
        if hasattr(p, "read") or len(p) > (16 << self.szx) or req.opt(_BLOCK2) is not None:
            from coap import block  # Block2 (RFC 7959) slicing only for bodies that need it
            return block.serve(self, req, r)
        return r

    def outer_response(self, req, resp):
        """The response as it goes out for req: through the transform (if any), with req's token."""
        if self.transform is not None:
            resp = self.transform.outgoing_response(self, req, resp)
        resp.token = req.token
        return resp

    def reply(self, req, resp, acked=False, raw=False):
        """Send resp as the answer to req: piggybacked on the ACK of a CON (unless `acked`: then a separate
        CON response), NON for a NON request; None acknowledges only. raw: resp is already the outer
        message (not given to the transform). Keeps the answer for the request's duplicates."""
        if resp is None:
            if req.type == _CON and not acked:
                self.ack(req)
            return None
        if raw:
            resp.token = req.token
        else:
            resp = self.outer_response(req, resp)
        if req.type == _CON and not acked:
            resp.type = _ACK
            resp.mid = req.mid
        else:  # separate response (CON, after our empty ACK) or the answer to a NON
            resp.type = _CON if acked else _NON
            resp.mid = self.next_mid()
        data = resp.encode()
        if resp.type == _CON:
            from coap.separate import send_quietly
            asyncio.create_task(send_quietly(self, resp, req.remote))
            return resp
        self.t.send(data, req.remote)
        if resp.type == _ACK:
            s = self._dd_find(req.remote, req.mid, ticks_ms())
            if s >= 0:
                # Keep the answer for duplicates (exactly-once handlers). A Block2 block read from a source is
                # kept as its header + (source, offset, n): a duplicate re-reads it instead of holding its bytes.
                src = getattr(resp, "src", None)
                n = len(resp.payload)
                if src is not None and n and self.transform is None:
                    self._dd_store(s, memoryview(data)[:len(data) - n - 1], 2, (src[0], src[1], n))
                else:
                    self._dd_store(s, data)
        return resp

    def notify(self, res):
        """The resource changed: send every observer a notification (NON, every n-th CON)."""
        if res.observers:
            from coap.observe import notify
            notify(self, res)


# Critical options this stack understands (If-Match, Uri-Host, If-None-Match, Uri-Port, Uri-Path, Uri-Query,
# Accept, Block2, Block1); any other odd-numbered option in a request is rejected (4.02; RST for a NON).
_KNOWN_CRITICAL = b"\x01\x03\x05\x07\x0b\x0f\x11\x17\x1b"


def _path(req):
    # One pass over the options: the Uri-Path as a str, MessageError for an unknown critical option,
    # UnicodeError for a segment that is not UTF-8.
    b = req.buf
    if b is None:
        for n, _ in req.opts:
            if n & 1 and (n > 255 or n not in _KNOWN_CRITICAL):
                raise MessageError("critical")
        return req.path()
    o = req.opts
    p = None
    for i in range(0, len(o), 3):
        n = o[i]
        if n == _URI_PATH:
            seg = str(b[o[i + 1]:o[i + 2]], "utf-8")
            p = "/" + seg if p is None else p + "/" + seg
        elif n & 1 and (n > 255 or n not in _KNOWN_CRITICAL):
            raise MessageError("critical")
    return "/" if p is None else p
