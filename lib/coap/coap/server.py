# CoAP server: resource tree with per-method handlers, /.well-known/core (RFC 6690), Observe (RFC 7641)
# and Block-wise (RFC 7959) in the server role.
#
# A handler is handler(request) -> response, sync or async. The response may be a Message (code, options,
# payload), a (code, payload) tuple, bytes/str (2.05 Content) or None (2.04 Changed for PUT/POST, else 2.05).
# A payload may be a source for big bodies: any object with .size and .read(offset, n) (and optionally
# .etag); the server then reads just the block asked for.
import asyncio
from coap.endpoint import Endpoint
from coap.msg import Message, unknown_critical, MessageError
from coap import block
from coap.observe import Observers

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
_FETCH = const(5)
_CONTENT = const(69)
_CHANGED = const(68)
_CONTINUE = const(95)
_BAD_REQUEST = const(128)
_BAD_OPTION = const(130)
_NOT_FOUND = const(132)
_NOT_ALLOWED = const(133)
_INCOMPLETE = const(136)
_TOO_LARGE = const(141)
_SERVER_ERROR = const(160)
_OBSERVE = const(6)
_BLOCK1 = const(27)
_BLOCK2 = const(23)
_SIZE1 = const(60)
_SIZE2 = const(28)
_ETAG = const(4)
_MAX_AGE = const(14)
_CONTENT_FORMAT = const(12)



class Resource:
    def __init__(self, path, get=None, put=None, post=None, delete=None, fetch=None, observable=False,
                 rt=None, if_=None, ct=None, title=None, max_age=None, max_body=8192, observer_limit=4):
        self.path = path if path.startswith("/") else "/" + path
        self.handlers = {_GET: get, _PUT: put, _POST: post, _DELETE: delete, _FETCH: fetch}
        self.rt = rt
        self.if_ = if_
        self.ct = ct
        self.title = title
        self.max_age = max_age
        self.max_body = max_body  # Block1 bodies are assembled up to this many bytes
        self.observers = Observers(observer_limit) if observable else None

    def link(self):
        s = "<" + self.path + ">"
        for k, v in (("rt", self.rt), ("if", self.if_), ("title", self.title)):
            if v is not None:
                s += ';%s="%s"' % (k, v)
        if self.ct is not None:
            s += ";ct=%s" % self.ct
        if self.observers is not None:
            s += ";obs"
        return s

    def matches(self, key, value):
        # RFC 6690 section 4.1 filtering: one attribute, value may end in "*" (prefix match).
        if key == "href":
            attr = [self.path]
        elif key == "ct":
            attr = [str(self.ct)] if self.ct is not None else []
        elif key in ("rt", "if", "title"):
            v = getattr(self, "if_" if key == "if" else key)
            attr = v.split(" ") if v and key != "title" else ([v] if v else [])
        elif key == "obs":
            return self.observers is not None
        else:
            return False
        if value.endswith("*"):
            value = value[:-1]
            for a in attr:
                if a.startswith(value):
                    return True
            return False
        return value in attr


def link_format(resources, query=()):
    """RFC 6690 body for /.well-known/core, filtered by a query like ["rt=temperature"]."""
    key = val = None
    for q in query:
        key, _, val = q.partition("=")
        break
    out = []
    for r in resources:
        if key is None or r.matches(key, val):
            out.append(r.link())
    return ",".join(out)


class _Bytes:
    # A bytes body seen as a source, so Block2 slicing has one code path.
    def __init__(self, b):
        self.b = b
        self.size = len(b)
        self.etag = None

    def read(self, off, n):
        return self.b[off:off + n]


def _etag(b):
    # Short ETag for a multi-block body without one, so a client notices a change mid-transfer.
    h = 5381
    for x in bytes(b[:64]) + bytes(b[-64:]):
        h = (h * 33 + x) & 0xFFFFFFFF
    return ((h ^ len(b)) & 0xFFFFFFFF).to_bytes(4, "big")


class Server(Endpoint):
    def __init__(self, transport, szx=None, max_uploads=4):
        Endpoint.__init__(self, transport)
        self.resources = {}
        self.szx = block.szx_for(transport.max_message_size) if szx is None else szx
        self.uploads = {}  # (remote, path) -> block.Assembler
        self.max_uploads = max_uploads
        self.ack_delay = self.params.ack_timeout // 4  # after this an async handler's _CON gets an empty _ACK
        self.notify_mids = {}  # (remote, mid) of _NON notifications -> (resource, token), to cancel on _RST


    def add(self, resource):
        self.resources[resource.path] = resource
        return resource

    def route(self, path, **kw):
        return self.add(Resource(path, **kw))

    # --- requests

    def on_request(self, req):
        try:
            r = self.respond(req)
            if r is not None and hasattr(r, "send"):  # a coroutine: answer later
                asyncio.create_task(self._separate(req, r))
                return
            self._reply(req, r, False)
        except Exception as e:  # never leave a _CON unanswered (its duplicates would be ignored)
            self.on_error(e)
            self._reply(req, Message(code=_SERVER_ERROR), False)

    def _reply(self, req, resp, acked):
        if resp is None:
            if req.type == _CON and not acked:
                self._empty(_ACK, req.mid, req.remote)
                self.dedup.put((req.remote, req.mid), bytes((0x60, 0, req.mid >> 8, req.mid & 255)),
                               _now())
            return None
        resp.token = req.token
        if req.type == _CON and not acked:
            resp.type = _ACK
            resp.mid = req.mid
        else:  # separate response (_CON, after our empty _ACK) or the answer to a _NON
            resp.type = _CON if acked else _NON
            resp.mid = self.next_mid()
        data = resp.encode()
        if resp.type == _CON:
            asyncio.create_task(self._con(resp, req.remote))
        else:
            self.t.send(data, req.remote)
        if resp.type == _ACK:
            # Keep the bytes for duplicates, except big answers to GET/FETCH (safe to compute again):
            # 32 cached blocks would otherwise hold 32 KiB.
            self.dedup.put((req.remote, req.mid), True if len(data) > 128 and req.code in (_GET, _FETCH) else data,
                           _now())
        return resp

    async def _con(self, m, remote):
        try:
            await self.send_con(m, remote)
        except Exception:
            pass

    async def _separate(self, req, coro):
        acked = [False]

        async def ack_later():
            await asyncio.sleep_ms(self.ack_delay) if hasattr(asyncio, "sleep_ms") else \
                await asyncio.sleep(self.ack_delay / 1000)
            acked[0] = True
            self._empty(_ACK, req.mid, req.remote)
            self.dedup.put((req.remote, req.mid), bytes((0x60, 0, req.mid >> 8, req.mid & 255)), _now())

        timer = asyncio.create_task(ack_later()) if req.type == _CON else None
        try:
            r = await coro
            r = self._finish(req, r)
        except Exception as e:
            self.on_error(e)
            r = Message(code=_SERVER_ERROR)
        if timer:
            timer.cancel()
        if acked[0] and r is not None:
            r.type = _CON
        self._reply(req, r, acked[0])

    def respond(self, req):
        """Request -> response Message (or a coroutine for async handlers); no I/O."""
        n = unknown_critical(req)
        if n is not None:
            return Message(code=_BAD_OPTION, payload=("unknown critical option %d" % n).encode())
        path = req.path()
        res = self.resources.get(path)
        if res is None:
            if path == "/.well-known/core" and req.code == _GET:
                res = _WK
            else:
                return Message(code=_NOT_FOUND)
        h = self.handlers_for(res, req.code)
        if h is None:
            return Message(code=_NOT_ALLOWED)
        try:
            b1 = req.opt(_BLOCK1)
            if b1 is not None:
                r = self._block1(req, res, b1)
                if r is not None:
                    return r
            obs = req.uint(_OBSERVE)
            o = res.observers
            if o is not None and req.code == _GET:
                b2 = req.opt(_BLOCK2)
                if b2 is None or block.decode(b2)[0] == 0:  # later blocks of a notification keep it
                    if obs == 0:
                        o.add(req.remote, req.token, req)  # over the limit: answered as a plain _GET
                    else:
                        o.remove(req.remote, req.token)
            r = h(req)
            if r is not None and hasattr(r, "send"):
                return r  # async handler: _separate awaits it and finishes the response
            return self._finish(req, r)
        except (MessageError, block.BlockError) as e:
            return Message(code=_BAD_OPTION if isinstance(e, block.BlockError) else _BAD_REQUEST,
                           payload=str(e).encode())
        except Exception as e:
            self.on_error(e)
            return Message(code=_SERVER_ERROR)

    def handlers_for(self, res, code):
        if res is _WK:
            return self._wk
        return res.handlers.get(code)

    def _wk(self, req):
        return Message(code=_CONTENT, payload=link_format(self.resources.values(), req.query()).encode()).add(
            _CONTENT_FORMAT, 40)

    def _block1(self, req, res, v):
        num, more, szx = block.decode(v)
        key = (req.remote, res.path)
        a = self.uploads.get(key)
        if num == 0:
            size1 = req.uint(_SIZE1)
            if size1 is not None and size1 > res.max_body:
                return Message(code=_TOO_LARGE).add(_SIZE1, res.max_body)
            if a is None and len(self.uploads) >= self.max_uploads:
                self.uploads.pop(next(iter(self.uploads)))
            a = self.uploads[key] = block.Assembler(res.max_body, None, size1)
        elif a is None:
            return Message(code=_INCOMPLETE)
        try:
            done = a.feed(num, more, szx, req.payload)
        except OverflowError:
            del self.uploads[key]
            return Message(code=_TOO_LARGE).add(_SIZE1, res.max_body)
        except block.BlockError:
            return Message(code=_INCOMPLETE)
        s = szx if szx < self.szx else self.szx  # RFC 7959 2.3: ask for smaller blocks by answering a smaller SZX
        if s < szx:
            num <<= szx - s
        if not done:
            return Message(code=_CONTINUE).add(_BLOCK1, block.encode(num, 1, s))
        del self.uploads[key]
        req.payload = a.buf
        req.block1 = block.encode(num, 0, s)
        return None

    def _finish(self, req, r):
        # Normalise a handler's result and apply Block1 echo, Observe and Block2 slicing.
        if r is None:
            r = Message(code=_CHANGED if req.code in (_PUT, _POST) else _CONTENT)
        elif type(r) is tuple:
            r = Message(code=r[0], payload=r[1])
        elif type(r) in (bytes, str, bytearray) or hasattr(r, "read"):
            r = Message(code=_CONTENT, payload=r if type(r) is not str else r.encode())
        b1 = getattr(req, "block1", None)
        if b1 is not None:
            r.add(_BLOCK1, b1)
        res = self.resources.get(req.path())
        if res is not None and r.code < 96:
            if res.observers is not None and (req.remote, req.token) in res.observers.reg \
                    and req.uint(_OBSERVE) == 0:
                r.add(_OBSERVE, res.observers.seq)
            if res.max_age is not None and not r.has(_MAX_AGE):
                r.add(_MAX_AGE, res.max_age)
        return self._block2(req, r)

    def _block2(self, req, r):
        p = r.payload
        src = p if hasattr(p, "read") else None
        rb2 = req.opt(_BLOCK2)
        szx = self.szx
        num = 0
        if rb2 is not None:
            num, _, s = block.decode(rb2)
            if s < szx:
                szx = s
        bs = 16 << szx
        if src is None:
            if len(p) <= bs and rb2 is None:
                return r
            src = _Bytes(p)
        size = src.size
        off = num * bs
        if off >= size and not (off == 0 and size == 0):
            return Message(code=_BAD_OPTION, payload=b"block out of range")
        data = src.read(off, bs)
        more = off + len(data) < size
        r.payload = data
        r.add(_BLOCK2, block.encode(num, more, szx))
        if num == 0 or req.opt(_SIZE2) is not None:
            r.add(_SIZE2, size)
        if not r.has(_ETAG):
            et = getattr(src, "etag", None)
            if et is None and type(src) is _Bytes and size > bs:
                et = _etag(src.b)
            if et is not None:
                r.add(_ETAG, et)
        return r

    # --- Observe

    def notify(self, res):
        """The resource changed: send every observer a notification (_NON, every n-th CON)."""
        o = res.observers
        if not o:
            return
        seq = o.next_seq()
        for key, entry in list(o.reg.items()):
            req = entry[0]
            h = res.handlers.get(_GET)
            r = h(req)
            if r is not None and hasattr(r, "send"):
                asyncio.create_task(self._notify_async(res, key, entry, seq, r))
            else:
                self._notify(res, key, entry, seq, r)

    async def _notify_async(self, res, key, entry, seq, coro):
        self._notify(res, key, entry, seq, await coro)

    def _notify(self, res, key, entry, seq, r):
        remote, token = key
        req = entry[0]
        r = self._finish(req, r)
        if r.code >= 96:  # an error ends the observation (RFC 7641 section 4.2)
            res.observers.remove(remote, token)
        elif not r.has(_OBSERVE):
            r.add(_OBSERVE, seq)
        r.token = token
        r.mid = self.next_mid()
        if res.observers.want_con(entry):
            r.type = _CON
            asyncio.create_task(self._notify_con(res, key, r))
        else:
            r.type = _NON
            if len(self.notify_mids) > 16:
                self.notify_mids.clear()
            self.notify_mids[(remote, r.mid)] = (res, token)
            self.t.send(r.encode(), remote)

    async def _notify_con(self, res, key, r):
        try:
            a = await self.send_con(r, key[0])
            if a.type != _RST:
                return
        except Exception:
            pass
        res.observers.remove(key[0], key[1])  # _RST or no _ACK: the observer is gone

    def _acked(self, m):
        Endpoint._acked(self, m)
        if m.type == _RST:
            x = self.notify_mids.pop((m.remote, m.mid), None)
            if x is not None:
                x[0].observers.remove(m.remote, x[1])


def _now():
    from coap.endpoint import ticks_ms
    return ticks_ms()


_WK = Resource("/.well-known/core", ct=40)
