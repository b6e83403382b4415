# Outer Block-wise (RFC 8613 section 4.1.3.4.2, RFC 7959): a protected message too large for one datagram is
# cut into blocks of its OSCORE ciphertext with Outer (unprotected) Block1/Block2 options, and put together
# again before it is verified. Loaded by oscore.transform on the first Outer Block option or oversized
# protected message. Inner Block-wise (each block its own OSCORE message, the endpoint's own Block-wise) stays
# what the endpoint does for bodies an application gives it; this is for peers and proxies that fragment the
# protected message, and for oscore.client.request(..., outer=True).
#
# Server role: Outer Block1 blocks of a request are collected per (peer, OSCORE option) up to max_body bytes
# (4.13 Request Entity Too Large with Size1 over it, 4.08 for a block out of order), answered 2.31 Continue,
# and the whole protected request is verified once the last block came. A protected response larger than the
# block the client asked for (Outer Block2) or than the link carries is kept (bounded) and served block by
# block: the client asks for the next block with the same protected request and an Outer Block2 option.
# Notifications too (RFC 7959 section 3.4): the first block carries Observe, the client asks for the rest with
# the registration's protected request without Observe, and the newest notification's blocks are served.
# Client role: request() protects a request once, sends it in Outer Block1 blocks when it is too large, and
# follows Outer Block2 to the end before it verifies the response; observe() registers that way, and a
# notification that comes in Outer Block2 blocks is followed to its end (notification()) and verified whole.
from coap import CoapError
from coap.block import decode as block_decode, encode as block_encode, BlockError
from coap.msg import Message, uint_bytes

from oscore import OscoreError

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const  # CPython: coap's one fallback

_BAD_REQUEST = const(128)
_BAD_OPTION = const(130)
_INCOMPLETE = const(136)
_TOO_LARGE = const(141)
_SERVER_ERROR = const(160)
_OBSERVE = const(6)
_CONTINUE = const(95)
_BLOCK2 = const(23)
_BLOCK1 = const(27)
_SIZE2 = const(28)
_SIZE1 = const(60)
_SLOTS = const(2)  # protected messages being put together / served at once (each up to max_body bytes)


class Blocks:
    """Server-side state of Outer Block-wise: requests being assembled, responses being served."""

    def __init__(self, max_body):
        self.max_body = max_body
        self.rx = {}  # (remote, OSCORE option) -> [buffer, bytes so far] of the request's ciphertext
        # (remote, request kid, request Partial IV) -> [outer response without payload, ciphertext, a notification
        # (kept after its last block was served, until the next one replaces it)]
        self.tx = {}


def _answer(code, payload=b""):
    return Message(code=code, payload=payload)


def _without(msg, drop):
    # msg's options minus the numbers in drop, as (number, value) pairs
    return [(n, bytes(v)) for n, v in msg.items() if n not in drop]


def _put(d, key, value):
    if key not in d and len(d) >= _SLOTS:
        d.pop(next(iter(d)))  # the oldest goes: a peer that went away must not hold the memory
    d[key] = value


def _state(tf):
    st = tf.blocks
    if st is None:
        st = tf.blocks = Blocks(tf.max_body)
    return st


def incoming(tf, req, osc):
    """Server role, for a protected request with an Outer Block option: a Message to answer with as it is (2.31,
    4.08, 4.13, a block of a kept response), or the request to verify: the whole protected request once its last
    Outer Block1 block came, with .oscore_outer = (Block1 value to echo or None, (num, szx) of the client's
    Outer Block2 or None)."""
    try:
        return _assemble(tf, req, osc)
    except MemoryError:  # the transfers in progress go: a board keeps answering
        tf.blocks = None
        return _answer(_SERVER_ERROR)


def _assemble(tf, req, osc):
    # An answer to send as it is, or the whole protected request (with .oscore_outer).
    st = _state(tf)
    try:
        b2 = req.opt(_BLOCK2)
        if b2 is not None:
            num, _, szx = block_decode(b2)
            if num:
                from oscore.transform import oscore_option
                try:
                    piv, _, kid, _ = oscore_option(req)
                    key = (req.remote, kid, piv)
                    kept = st.tx.get(key)
                except OscoreError:  # verification answers it
                    kept = None
                if kept is not None:
                    return _block(st, key, kept, num, szx)
            b2 = (num, szx)
        b1 = req.opt(_BLOCK1)
        full = req
        if b1 is not None:
            full = _collect(st, (req.remote, bytes(osc)), req, b1)
            if full.code >= 64:
                return full
            b1 = full.oscore_b1
    except BlockError as e:
        return _answer(_BAD_OPTION, str(e).encode())
    full.oscore_outer = (b1, b2)
    return full


def _collect(st, key, req, b1):
    num, more, szx = block_decode(b1)
    p = req.payload
    e = st.rx.get(key)  # [buffer, bytes in it]
    if num == 0:
        size = req.uint(_SIZE1)
        if size is not None and size > st.max_body:
            return _too_large(st, key)
        e = [bytearray(size or 0), 0]  # the announced size at once: no regrowth, no fragments
        _put(st.rx, key, e)
    elif e is None or e[1] != num << (szx + 4):
        st.rx.pop(key, None)
        return _answer(_INCOMPLETE)
    if more and len(p) != 16 << szx:
        st.rx.pop(key, None)
        return _answer(_BAD_REQUEST, b"short block")
    buf, n = e
    end = n + len(p)
    if end > st.max_body:
        return _too_large(st, key)
    room = len(buf) - n
    if len(p) <= room:
        buf[n:end] = p
    elif room:  # more than Size1 said
        buf[n:] = p[:room]
        buf += p[room:]
    else:  # no Size1: the buffer grows block by block
        buf += p
    e[1] = end
    if more:
        r = _answer(_CONTINUE)
        r.add(_BLOCK1, block_encode(num, 1, szx))
        return r
    del st.rx[key]
    # no copy: the buffer is no longer shared
    full = Message(req.type, req.code, req.mid, req.token, buf if end == len(buf) else memoryview(buf)[:end])
    full.opts = _without(req, (_BLOCK1, _SIZE1))
    full.remote = req.remote
    full.oscore_b1 = block_encode(num, 0, szx)
    return full


def _too_large(st, key):
    st.rx.pop(key, None)
    r = _answer(_TOO_LARGE)
    r.add(_SIZE1, st.max_body)
    return r


def _block(st, key, kept, num, szx):
    head, body, stays = kept
    bs = 16 << szx
    off = num * bs
    if off >= len(body):
        return _answer(_BAD_OPTION, b"block out of range")
    more = off + bs < len(body)
    r = Message(code=head.code, payload=body[off:off + bs])
    r.opts = list(head.opts)
    r.add(_BLOCK2, block_encode(num, more, szx))
    if not more and not stays:  # a notification stays until the next one replaces it (or the slot goes)
        del st.tx[key]
    return r


def outgoing(tf, ep, req, out):
    """Server role: the protected response out as the client gets it: whole, or its first Outer Block2 block
    when it is larger than the block the client asked for or than the link carries (the rest is kept)."""
    b = req.oscore
    b1, b2 = b[6] if len(b) > 6 else (None, None)
    if b1 is not None:
        out.add(_BLOCK1, b1)
    body = out.payload
    observe = out.opt(_OBSERVE)
    if b2 is not None:
        num, szx = b2
        if observe is not None:
            num = 0  # every notification starts with its first block
    else:
        num = 0
        szx = 6
        while szx and (16 << szx) + 64 > ep.t.max_message_size:
            szx -= 1
        if len(body) + 64 <= ep.t.max_message_size:
            return out
    bs = 16 << szx
    if len(body) <= bs and not num:
        if b2 is not None:
            out.add(_BLOCK2, block_encode(0, 0, szx))
        return out
    if len(body) > tf.max_body:
        return _answer(_SERVER_ERROR)  # the response cannot be kept for the client to fetch
    st = _state(tf)
    head = Message(code=out.code)
    # A notification (RFC 7959 section 3.4): Observe on its first block only; the client asks for the rest with
    # the registration's protected request, without Observe, and gets the blocks of the newest notification.
    head.opts = out.opts if observe is None else [x for x in out.opts if x[0] != _OBSERVE]
    key = (req.remote, b[1], b[2])
    kept = [head, bytes(body), observe is not None]
    _put(st.tx, key, kept)
    r = _block(st, key, kept, num, szx)
    if not num:
        r.add(_SIZE2, len(body))
        if observe is not None:
            r.add(_OBSERVE, observe)
    return r


# --- client role

async def send(tf, client, method, remote, path, payload=b"", options=(), con=True, szx=None, timeout=None):
    """oscore.client.request(..., outer=True): the request built as client.request builds it, through the context of
    remote, and the Echo of a challenge kept for that context."""
    import os
    from oscore.client import challenged, echoed, peer
    ctx = peer(tf, remote)
    if ctx is None:
        raise OscoreError("no OSCORE context for %r" % (remote,))
    m = Message(0 if con else 1, method, 0, os.urandom(4), payload).set_path(path)
    for o in options:
        m.add(o[0], o[1])
    m.remote = remote
    r = await request(client, ctx, echoed(tf, ctx, m), remote, client.szx if szx is None else szx, tf.max_body,
                      timeout)
    challenged(tf, ctx, r)
    return r


async def observe(tf, client, remote, path, callback, options=(), szx=None):
    """client.observe through OSCORE where the registration's response and the notifications may come in Outer
    Block2 blocks (section 4.1.3.4.2): the registration is protected once (through the context of remote, retried
    once with the Echo of a challenge), an Outer Block2 response is followed to its end and verified whole, and
    so is every notification that comes in blocks (oscore.client.incoming). szx: the outer block size the
    registration asks the notifications to come in (the client's szx by default). Returns the Observation."""
    from coap.observe import Observation
    from oscore.client import challenged, echoed, peer
    ctx = peer(tf, remote)
    if ctx is None:
        raise OscoreError("no OSCORE context for %r" % (remote,))
    o = Observation(client, remote, path, tuple(options), callback)
    m = o.req = Message(0, 1, 0, o.token).set_path(path).add(_OBSERVE, 0)
    for x in o.options:
        m.add(x[0], x[1])
    m.remote = remote
    for _ in range(2):
        r = await request(client, ctx, echoed(tf, ctx, m), remote, client.szx if szx is None else szx, tf.max_body,
                          keep=m)
        challenged(tf, ctx, r)
        if tf.echo is None or r.code != 129:
            break
    client.waiters[(o.token, remote)] = o  # notifications: routed by token to the Observation
    o.deliver(r)
    return o


def notification(tf, ep, req, first):
    """Client role, oscore.client.incoming of a protected response with an Outer Block2 option outside an Outer
    Block-wise exchange: the first block of an Observe registration's answer or notification too large for one
    datagram. Its other blocks are asked for with the registration's protected request (kept as req.oscore_out).
    The registration's own answer (no observation routed by its token yet): a coroutine that fetches them and
    returns the verified whole (coap.transform: the client's exchange awaits it). A notification: the whole goes
    to the observation (ep.waiters) as one message, where it is verified; None: nothing to deliver now."""
    try:
        num, more, szx = block_decode(first.opt(_BLOCK2))
    except BlockError:
        return None
    out = getattr(req, "oscore_out", None)
    if num or out is None:
        return None
    from oscore.client import incoming
    if not more:
        return incoming(tf, ep, req, _whole(first, first.payload))
    if ep.waiters.get((first.token, first.remote)) is None:  # the registration's answer, in its exchange
        return _answer_whole(tf, ep, req, out, first, szx)
    busy = getattr(req, "oscore_rest", None)
    if busy is not None:  # one notification's blocks at a time (bounded): the newest waits for its turn
        busy[0] = first
        return None
    req.oscore_rest = [None]
    import asyncio
    asyncio.create_task(_rest(tf, ep, req, out, first, szx))
    return None


def _whole(first, body):
    m = Message(first.type, first.code, first.mid, first.token, body)
    m.opts = _without(first, (_BLOCK2, _SIZE2))
    m.remote = first.remote
    return m


async def _rest(tf, ep, req, out, first, szx):
    # Follows first, then the newest first block that came meanwhile (a server keeps only its newest
    # notification: the blocks of an older one may no longer be there, and then it does not verify).
    try:
        while first is not None:
            await _follow(tf, ep, out, first, szx)
            first = req.oscore_rest[0]
            req.oscore_rest[0] = None
            if first is not None:
                szx = block_decode(first.opt(_BLOCK2))[2]
    finally:
        req.oscore_rest = None


async def _answer_whole(tf, ep, req, out, first, szx):
    from oscore.client import incoming
    m = await _fetch(tf, ep, out, first, szx)
    return None if m is None else incoming(tf, ep, req, m)


async def _follow(tf, ep, out, first, szx):
    m = await _fetch(tf, ep, out, first, szx)
    w = None if m is None else ep.waiters.get((first.token, first.remote))
    if w is not None and type(w) is not list:  # the observation is still there
        w(m)


async def _fetch(tf, ep, out, first, szx):
    # The whole protected message whose first Outer Block2 block is first (None: it cannot be had whole).
    import os
    remote = first.remote
    buf = bytearray(first.payload)
    m = Message(0, out.code, 0, os.urandom(4), out.payload if len(out.payload) <= 16 << szx else b"")
    m.remote = remote
    m.oscore_raw = True  # the registration as it was protected, without its Observe: the transform passes it
    base = [x for x in out.opts if x[0] != _OBSERVE and x[0] != _BLOCK2]
    more = True
    try:
        while more:
            if len(buf) > tf.max_body:
                return None
            m.opts = base + [(_BLOCK2, uint_bytes(block_encode(len(buf) >> (szx + 4), 0, szx)))]
            r = await ep.exchange(m, remote)
            v = r.opt(_BLOCK2)
            if v is None:
                return None
            num, more, szx = block_decode(v)
            if num << (szx + 4) != len(buf):
                return None  # a newer notification replaced this one on the server: that one comes by itself
            buf += r.payload
    except (CoapError, MemoryError):
        return None
    return _whole(first, buf)


async def request(client, ctx, inner, remote, szx, max_body, timeout=None, keep=None):
    """The verified inner response to inner (a request), protected once through ctx: the protected request goes
    in Outer Block1 blocks of 16 << szx bytes when it is larger, an Outer Block2 response is followed to its end
    (at most max_body bytes) and then verified. Raises OscoreError (a response that does not verify, or an
    unprotected error answer: .response), BlockError, or the client's RequestTimeout."""
    from oscore.client import protect_request, unprotect_response
    out, binding = protect_request(ctx, inner)
    if keep is not None:  # an Observe registration (observe()): its notifications are verified with binding
        keep.oscore = binding
        keep.oscore_out = out
    body = out.payload
    bs = 16 << szx
    opts = out.opts
    m = Message(out.type, out.code, 0, inner.token)
    m.remote = remote
    m.oscore_raw = True  # already protected: the transform lets it through as it is
    if len(body) <= bs:
        m.opts = opts
        if szx < 6:
            opts.append((_BLOCK2, uint_bytes(block_encode(0, 0, szx))))  # the block size the response may come in
        m.payload = body
        r = await client.exchange(m, remote, timeout)
    else:
        off = 0
        while True:
            take = body[off:off + bs]
            more = off + len(take) < len(body)
            m.opts = list(opts)
            m.opts.append((_BLOCK1, uint_bytes(block_encode(off >> (szx + 4), more, szx))))
            if not off:
                m.opts.append((_SIZE1, uint_bytes(len(body))))
            m.payload = take
            r = await client.exchange(m, remote, timeout)
            if not more or r.code != _CONTINUE:
                break
            v = r.opt(_BLOCK1)
            if v is not None:  # the server may ask for smaller blocks (RFC 7959 section 2.5)
                s = block_decode(v)[2]
                if s < szx:
                    szx = s
                    bs = 16 << szx
            off += len(take)
        if more:
            raise _refused(r)
    b2 = r.opt(_BLOCK2)
    if b2 is not None:
        num, more, s = block_decode(b2)
        buf = bytearray(r.payload)
        m.opts = [x for x in opts if x[0] != _BLOCK2 and x[0] != _OBSERVE]  # the rest: no new registration
        m.opts.append((_BLOCK2, b""))
        m.payload = body if len(body) <= bs else b""
        while more:
            if len(buf) > max_body:
                raise BlockError("protected response over %d bytes" % max_body)
            m.opts[-1] = (_BLOCK2, uint_bytes(block_encode(len(buf) >> (s + 4), 0, s)))
            r = await client.exchange(m, remote, timeout)
            v = r.opt(_BLOCK2)
            if v is None:
                raise _refused(r)
            num, more, s2 = block_decode(v)
            if num << (s2 + 4) != len(buf):
                raise BlockError("block at %d, expected %d" % (num << (s2 + 4), len(buf)))
            s = s2
            buf += r.payload
        full = Message(r.type, r.code, r.mid, r.token, buf)
        full.opts = _without(r, (_BLOCK2, _SIZE2, _BLOCK1))
        full.remote = r.remote
        r = full
    return unprotect_response(binding, r)


def _refused(r):
    e = OscoreError("outer block-wise transfer refused: %d.%02d" % (r.code >> 5, r.code & 31))
    e.response = r
    return e
