# The server role of coap.endpoint.Endpoint, loaded with the first resource (Endpoint.add/route, or
# coap.server.Server), so an endpoint that only requests never holds this code. Sans-IO apart from sending:
# on_request() deduplicates a request from the message layer, then takes a new one through the transform to
# respond() and reply().
#
# Public operations for the optional parts and the layers above (coap.observe, coap.separate, coap.upload,
# coap.transform, OSCORE): finish(), reply(), ack(), outer_response(), each taking the endpoint first.
#
# A handler is handler(request) -> response, sync or async. The response may be a Message (code, options,
# payload), a (code, payload) tuple, bytes/str (2.05 Content) or None (2.04 Changed for PUT/POST, else 2.05).
# A payload may be a source for big bodies: any object with .size and .read(offset, n) (and optionally
# .etag); the endpoint then reads just the block asked for.
import asyncio
from coap import CoapError
from coap.msg import Message, MessageError
from coap import dedup

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

try:
    from time import ticks_ms, ticks_add
except ImportError:  # CPython
    from coap._cpython import ticks_ms, ticks_add

_CON = const(0)
_NON = const(1)
_ACK = const(2)
_RST = const(3)
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
_URI_PATH = const(11)
_MAX_AGE = const(14)
_BLOCK2 = const(23)
_BLOCK1 = const(27)
_NO_RESPONSE = const(258)
# coap.dedup's layout, for the slots the lean GET path fills: the cache's own state, then the slot fields.
_DD_NEXT = const(0)
_DD_HEAD = const(5)
_DD_W = const(1)
_DD_LAP = const(2)
_DD_RING = const(3)
_DD_END = const(4)
_D_REMOTE = const(1)
_D_EXP = const(2)
_D_STATE = const(3)
_D_OFF = const(4)
_D_LEN = const(5)
_D_LAP = const(6)
_D_OBJ = const(7)
_D_N = const(8)


class Resource:
    """A path with per-method handlers. max_body bounds a Block1 body; upload=factory(req) streams Block1
    bodies instead of assembling them: factory is called with the first block's request and returns a sink
    callable sink(offset, data); after the last block the method's handler runs with req.upload = that sink
    and an empty req.payload. observable=True makes GET observable (RFC 7641). The link-format attributes
    for /.well-known/core (rt, if_, ct, title) are keyword arguments too, kept in .link."""

    def __init__(self, path, get=None, put=None, post=None, delete=None, fetch=None, observable=False,
                 max_age=None, max_body=8192, observer_limit=4, upload=None, **link):
        self.path = path if path.startswith("/") else "/" + path
        self.handlers = {_GET: get, _PUT: put, _POST: post, _DELETE: delete, _FETCH: fetch}
        self.link = link
        self.max_age = max_age
        self.max_body = max_body
        self.upload = upload
        self.observers = None
        if observable:
            from coap.observe import Observers
            self.observers = Observers(observer_limit)


def on_request(ep, req):
    """A request from the message layer: deduplicated, then through the transform to respond() and reply()."""
    now = ticks_ms()
    # A duplicate is answered as before, the handler not run again (a new MID is not in the index: the
    # common case costs one dict look-up).
    if ep.dd_index[req.mid & 255]:
        s = dedup.find(ep, req.remote, req.mid, now)
        if s >= 0 and dedup.resend(ep, s, req.type):
            return
    s = dedup.add(ep, req.remote, req.mid, now)
    try:
        if ep.transform is not None:
            from coap.transform import request_in
            req = request_in(ep, req)
            if req is None:  # refused, and answered as the transform said
                return
        try:
            r = respond(ep, req)
            if r is None:  # a NON to reject (RFC 7252 5.4.1): RST
                ep.send_empty(_RST, req.mid, req.remote)
                return
            if hasattr(r, "send"):  # a coroutine: answer later
                from coap.separate import answer_later
                asyncio.create_task(answer_later(ep, req, r))
                return
        except MemoryError:
            raise
        except Exception as e:  # never leave a CON unanswered (its duplicates would be ignored)
            ep.on_error(e)
            r = Message(code=_SERVER_ERROR)
        reply(ep, req, r)
    except MemoryError:  # unanswered: forget it, so its retransmission is taken as new
        d = ep.dd
        d[s] = -1  # the index's entry for it is then stale: coap.dedup's find checks the slot's MID
        d[s + _D_OBJ] = None
        raise


def burst(ep, data, remote, linger):
    # The message layer's entry for a serving endpoint (Endpoint.receive, and its loop's wake-ups with the
    # transport's linger_us): one datagram, then, with linger, each next one the transport has within linger
    # (whole ms, blocked in poll) after a request was answered, up to 32 (a sequential client sends its next
    # request within microseconds). True when the last datagram was a request.
    #
    # A plain GET takes the lean path here: a CON or NON GET (no transform), not a duplicate, with only
    # Uri-Path options and no payload, of a resource without Observe or Max-Age. Its handler gets a request
    # Message holding only what the datagram has (the class's defaults stand for CON, GET, no options); an
    # answer of bytes that fit one block is written straight into the deduplication ring, its slot filled
    # here (coap.dedup's layout; the first entry and the end of a lap take dedup.add and dedup.room), and sent
    # from there. Everything else goes to ep.receive (lean=False). What the loop uses per datagram is in
    # locals (a name looked up in the module or the builtins costs more than the test it serves).
    s = p = d = v = k = mid = tkl = req = r = path = e = o = None  # the busiest locals first: 1-byte opcodes
    t = ep.t
    mx = t.max_message_size
    rs = ep.resources
    d = ep.dd
    blk = min(16 << ep.szx, mx - 16)  # an answer the lean path sends: one block, within one message (and the ring)
    linger = (linger + 999) // 1000
    now = ticks_ms()
    exp = ticks_add(now, ep.params.exchange_lifetime)
    L = len
    T = type
    B = bytes
    M = Message
    new = object.__new__
    n = 32
    while True:
        lean = False
        while True:  # the lean path; break: ep.receive takes the datagram
            k = L(data)
            if k < 4 or data[1] != _GET or k > mx or T(data) is not B or ep.transform is not None:
                break
            b0 = data[0]
            tkl = b0 & 15
            p = 4 + tkl
            if b0 & 0xE0 != 0x40 or tkl > 8 or p > k:  # version 1, CON or NON
                break
            mid = (data[2] << 8) | data[3]
            ix = ep.dd_index
            if ix[mid & 255] and dedup.find(ep, remote, mid, now) >= 0:  # a duplicate: the general path
                break
            path = None
            o = None
            while p < k:  # Uri-Path options only; p = -1: not a plain GET
                b = data[p]
                if b >> 4 != (0 if path else _URI_PATH):
                    p = -1
                    break
                ln = b & 15
                p += 1
                if ln > 12:
                    if ln != 13 or p == k:
                        p = -1
                        break
                    ln = data[p] + 13
                    p += 1
                e = p + ln
                if e > k:
                    p = -1
                    break
                try:
                    seg = str(data[p:e], "utf-8")
                except UnicodeError:
                    p = -1
                    break
                if path is None:
                    path = "/" + seg
                    o = []
                else:
                    path += "/" + seg
                o.append(_URI_PATH)
                o.append(p)
                o.append(e)
                p = e
            if p != k:
                break
            res = rs.get(path or "/")
            if res is None or res.observers is not None or res.max_age is not None:
                break
            h = res.handlers[_GET]
            if h is None:
                break
            req = new(M)  # no __init__: only what the datagram has is set
            if b0 & 0x10:
                req.type = _NON
            req.mid = mid
            if tkl:
                req.token = tok = data[4:4 + tkl]
            if o is not None:
                req.buf = memoryview(data)
                req.opts = o
            req.remote = remote
            # The deduplication entry is made after a sync handler ran (nothing else runs meanwhile): a
            # MemoryError in it leaves nothing to forget, so its retransmission is taken as new.
            try:
                r = h(req)
                q = T(r)
                if q is not B:
                    if q is str:
                        r = r.encode()
                        q = B
                    elif r is not None and hasattr(r, "send"):  # an async handler: answered later
                        dedup.add(ep, remote, mid, now)
                        from coap.separate import answer_later
                        asyncio.create_task(answer_later(ep, req, r))
                        lean = True
                        break
            except Exception as e:
                r = _failed(ep, e)
                q = None
            nr = L(r) if q is B else blk + 1
            if nr <= blk:
                k = 5 + tkl + nr if nr else 4 + tkl  # the answer's length
                s = d[_DD_NEXT]
                w = d[_DD_W]
                v = d[_DD_RING]
                if v is None or s >= d[_DD_END] or w + k > L(v):  # the first answer, or the ring wraps
                    s = dedup.add(ep, remote, mid, now)
                    try:
                        v = dedup.room(ep, s, k)
                        if v is None:  # no hole for the ring: the general reply keeps the answer as an object
                            reply(ep, req, finish(ep, req, r))
                            lean = True
                            break
                    except MemoryError:  # unanswered: forget the entry (its retransmission is new)
                        d[s] = -1
                        d[s + _D_OBJ] = None
                        raise
                else:  # as dedup.add and dedup.room would; the view first (a MemoryError leaves the cache as it was)
                    v = v[w:w + k]
                    d[_DD_NEXT] = s + _D_N if s + _D_N < d[_DD_END] else _DD_HEAD
                    d[_DD_W] = w + k
                    j = d[s]
                    if j >= 0 and ix[j & 255] == s:
                        ix[j & 255] = 0
                    ix[mid & 255] = s
                    d[s] = mid
                    d[s + _D_REMOTE] = remote
                    d[s + _D_EXP] = exp
                    d[s + _D_STATE] = 1  # bytes in the ring
                    d[s + _D_OFF] = w
                    d[s + _D_LEN] = k
                    d[s + _D_LAP] = d[_DD_LAP]
                    d[s + _D_OBJ] = None
                if b0 & 0x10:
                    v[0] = 0x50 | tkl  # NON, a new MID
                    mid = ep.next_mid()
                else:
                    v[0] = 0x60 | tkl  # ACK, piggybacked
                v[1] = _CONTENT
                v[2] = mid >> 8
                v[3] = mid & 255
                p = 4 + tkl
                if tkl:
                    v[4:p] = tok
                if nr:
                    v[p] = 0xFF
                    v[p + 1:] = r
                t.send(v, remote)
            else:
                s = dedup.add(ep, remote, mid, now)
                try:
                    reply(ep, req, finish(ep, req, r))
                except MemoryError:  # unanswered: forget it (as on_request does), so its retransmission is new
                    d[s] = -1
                    d[s + _D_OBJ] = None
                    raise
            lean = True
            break
        if not lean and not ep.receive(data, remote, False):
            return None  # not a request (a response: let the task waiting for it run)
        n -= 1
        if not linger or not n:
            return True
        x = t.recv_now(linger)
        if x is None:
            return True
        data, remote = x


def _failed(ep, e):
    # The answer to a handler's exception: a malformed option value (4.00) or block option (4.02), else 5.00.
    if isinstance(e, MemoryError):
        raise e
    if isinstance(e, CoapError):
        return Message(code=_BAD_REQUEST if isinstance(e, MessageError) else _BAD_OPTION, payload=str(e).encode())
    ep.on_error(e)
    return Message(code=_SERVER_ERROR)


def respond(ep, req):
    """Request -> response Message (or a coroutine for async handlers; None: reject the NON request with
    RST); no I/O."""
    try:
        # One pass over the options: the Uri-Path as a str, MessageError for an unknown critical option (any
        # odd-numbered option but If-Match, Uri-Host, If-None-Match, Uri-Port, Uri-Path, Uri-Query, Accept,
        # Block2, Block1), UnicodeError for a segment that is not UTF-8.
        b = req.buf
        o = req.opts
        if b is None:
            for n, _ in o:
                if n & 1 and (n > 255 or n not in b"\x01\x03\x05\x07\x0b\x0f\x11\x17\x1b"):
                    raise MessageError
            path = req.path()
        else:
            path = None
            for i in range(0, len(o), 3):
                n = o[i]
                if n == _URI_PATH:
                    seg = str(b[o[i + 1]:o[i + 2]], "utf-8")
                    path = "/" + seg if path is None else path + "/" + seg
                elif n & 1 and (n > 255 or n not in b"\x01\x03\x05\x07\x0b\x0f\x11\x17\x1b"):
                    raise MessageError
            if path is None:
                path = "/"
    except MessageError:
        if req.type == _NON:
            return None
        return Message(code=_BAD_OPTION, payload=b"unknown critical option")
    except UnicodeError:
        return Message(code=_BAD_REQUEST, payload=b"Uri-Path not UTF-8")
    res = ep.resources.get(path)
    if res is None:
        if path == "/.well-known/core" and req.code == _GET:
            from coap.linkformat import well_known
            return finish(ep, req, well_known(ep, req))
        return Message(code=_NOT_FOUND)
    req.resource = res
    h = res.handlers.get(req.code)
    if h is None:
        return Message(code=_NOT_ALLOWED)
    try:
        b1 = req.opt(_BLOCK1)
        if b1 is not None:
            from coap import upload
            r = upload.receive(ep, req, res, b1)
            if r is not None:
                return r
        if res.observers is not None and req.code == _GET:
            from coap.observe import register
            register(req, res)
        r = h(req)
        if r is not None and hasattr(r, "send"):
            return r  # async handler: coap.separate awaits it and finishes the response
        return finish(ep, req, r)
    except Exception as e:
        return _failed(ep, e)


def finish(ep, req, r):
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
        if res.observers is not None:
            from coap.observe import annotate
            annotate(req, res, r)
        if res.max_age is not None and not r.has(_MAX_AGE):
            r.add(_MAX_AGE, res.max_age)
    p = r.payload
    if hasattr(p, "read") or len(p) > (16 << ep.szx) or req.opt(_BLOCK2) is not None:
        from coap import block  # Block2 (RFC 7959) slicing only for bodies that need it
        return block.serve(ep, req, r)
    return r


def outer_response(ep, req, r):
    """The response as it goes out for req: through the transform (if any), with req's token."""
    if ep.transform is not None:
        r = ep.transform.outgoing_response(ep, req, r)
    r.token = req.token
    return r


def ack(ep, req, mtype=_ACK):
    """Send the empty ACK (or RST) for a CON request and keep it for its duplicates."""
    mid = req.mid
    ep.send_empty(mtype, mid, req.remote)
    s = dedup.find(ep, req.remote, mid, ticks_ms())
    if s >= 0:
        dedup.store(ep, s, bytes((0x40 | (mtype << 4), 0, mid >> 8, mid & 255)))


def reply(ep, req, r, acked=False, raw=False):
    """Send r as the answer to req: piggybacked on the ACK of a CON (unless `acked`: then a separate
    CON response), NON for a NON request; None acknowledges only. raw: r is already the outer
    message (not given to the transform). Keeps the answer for the request's duplicates."""
    if r is not None:
        nr = req.uint(_NO_RESPONSE)
        # RFC 7967: bit 1 suppresses 2.xx, bit 3 4.xx, bit 4 5.xx (a CON still gets its empty ACK)
        if nr and (r.code >> 5) in (2, 4, 5) and nr >> ((r.code >> 5) - 1) & 1:
            r = None
    if r is None:
        if req.type == _CON and not acked:
            ack(ep, req)
        return None
    if raw:
        r.token = req.token
    else:
        r = outer_response(ep, req, r)
    if req.type == _CON and not acked:
        r.type = _ACK
        r.mid = req.mid
    else:  # separate response (CON, after our empty ACK) or the answer to a NON
        r.type = _CON if acked else _NON
        r.mid = ep.next_mid()
    data = r.encode()
    if r.type == _CON:
        from coap.separate import send_quietly
        asyncio.create_task(send_quietly(ep, r, req.remote))
        return r
    ep.t.send(data, req.remote)
    if r.type == _ACK:
        s = dedup.find(ep, req.remote, req.mid, ticks_ms())
        if s >= 0:
            # Keep the answer for duplicates (exactly-once handlers). A Block2 block read from a source is
            # kept as its header + (source, offset, n): a duplicate re-reads it instead of holding its bytes.
            src = getattr(r, "src", None)
            n = len(r.payload)
            if src is not None and n and ep.transform is None:
                dedup.store(ep, s, memoryview(data)[:len(data) - n - 1], 2, (src[0], src[1], n))
            else:
                dedup.store(ep, s, data)
    return r
