# CoAP server: resource tree with per-method handlers, /.well-known/core (RFC 6690), Observe (RFC 7641)
# and Block-wise (RFC 7959) in the server role.
#
# A handler is handler(request) -> response, sync or async. The response may be a Message (code, options,
# payload), a (code, payload) tuple, bytes/str (2.05 Content) or None (2.04 Changed for PUT/POST, else 2.05).
# A payload may be a source for big bodies: any object with .size and .read(offset, n) (and optionally
# .etag); the server then reads just the block asked for.
import asyncio
from coap import CoapError
from coap.endpoint import Endpoint, szx_for
from coap.msg import Message, unknown_critical, MessageError

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
        self.observers = None
        if observable:
            from coap.observe import Observers
            self.observers = Observers(observer_limit)

class Server(Endpoint):
    def __init__(self, transport, szx=None, max_uploads=4):
        Endpoint.__init__(self, transport)
        self.resources = {}
        self.szx = szx_for(transport.max_message_size) if szx is None else szx
        self.uploads = {}  # (remote, path) -> block.Assembler
        self.max_uploads = max_uploads
        self.ack_delay = self.params.ack_timeout // 4  # after this an async handler's _CON gets an empty _ACK
        self.notify_mids = None  # coap.observe: (remote, mid) of NON notifications -> (resource, token)


    def add(self, resource):
        self.resources[resource.path] = resource
        return resource

    def route(self, path, **kw):
        return self.add(Resource(path, **kw))

    # --- requests

    def on_request(self, req):
        tf = self.transform
        if tf is not None:
            inner = tf.incoming_request(self, req)
            if inner is None:  # refused at the message layer
                if req.type == _CON:
                    self._empty(_RST, req.mid, req.remote)
                    self.remember((req.remote, req.mid), bytes((0x70, 0, req.mid >> 8, req.mid & 255)))
                return
            if inner is not req:
                inner.type = req.type
                inner.mid = req.mid
                inner.token = req.token
                inner.remote = req.remote
            if inner.code >= 64:  # refused with an answer, sent as it is
                self._reply(req, inner, False, True)
                return
            req = inner
        try:
            r = self.respond(req)
            if r is not None and hasattr(r, "send"):  # a coroutine: answer later
                from coap.separate import answer_later
                asyncio.create_task(answer_later(self, req, r))
                return
            self._reply(req, r, False)
        except Exception as e:  # never leave a CON unanswered (its duplicates would be ignored)
            self.on_error(e)
            self._reply(req, Message(code=_SERVER_ERROR), False)

    def _reply(self, req, resp, acked, raw=False):
        if resp is None:
            if req.type == _CON and not acked:
                self._empty(_ACK, req.mid, req.remote)
                self.remember((req.remote, req.mid), bytes((0x60, 0, req.mid >> 8, req.mid & 255)))
            return None
        tf = self.transform
        if tf is not None and not raw:
            resp = tf.outgoing_response(self, req, resp)
        resp.token = req.token
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
        else:
            self.t.send(data, req.remote)
        if resp.type == _ACK:
            # Keep the answer for duplicates (exactly-once handlers). A Block2 block read from a source is kept
            # as its header + (source, offset, n): a duplicate re-reads that block instead of holding its bytes.
            v = data
            s = getattr(resp, "src", None)
            if s is not None and tf is None:
                n = len(resp.payload)
                v = (bytes(data[:len(data) - n - 1] if n else data), s[0], s[1], n)
            self.remember((req.remote, req.mid), v)
        return resp

    def respond(self, req):
        """Request -> response Message (or a coroutine for async handlers); no I/O."""
        n = unknown_critical(req)
        if n is not None:
            return Message(code=_BAD_OPTION, payload=("unknown critical option %d" % n).encode())
        path = req.path()
        res = self.resources.get(path)
        if res is None:
            if path == "/.well-known/core" and req.code == _GET:
                from coap.linkformat import well_known
                return self._finish(req, well_known(self, req))
            return Message(code=_NOT_FOUND)
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
            obs = req.uint(_OBSERVE)
            o = res.observers
            if o is not None and req.code == _GET:
                b2 = req.opt(_BLOCK2)
                if b2 is None or int.from_bytes(b2, "big") >> 4 == 0:  # later blocks of a notification keep it
                    if obs == 0:
                        o.add(req.remote, req.token, req)  # over the limit: answered as a plain _GET
                    else:
                        o.remove(req.remote, req.token)
            r = h(req)
            if r is not None and hasattr(r, "send"):
                return r  # async handler: _separate awaits it and finishes the response
            return self._finish(req, r)
        except CoapError as e:  # a malformed option value (4.00) or block option (4.02)
            return Message(code=_BAD_REQUEST if isinstance(e, MessageError) else _BAD_OPTION,
                           payload=str(e).encode())
        except Exception as e:
            self.on_error(e)
            return Message(code=_SERVER_ERROR)

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
        p = r.payload
        if hasattr(p, "read") or len(p) > (16 << self.szx) or req.opt(_BLOCK2) is not None:
            from coap import block  # Block2 (RFC 7959) slicing only for bodies that need it
            return block.serve(self, req, r)
        return r

    def notify(self, res):
        """The resource changed: send every observer a notification (NON, every n-th CON)."""
        if res.observers:
            from coap.observe import notify
            notify(self, res)

