# The endpoint's deduplication cache (RFC 7252 4.5), its state in coap.endpoint.Endpoint's dd and dd_index:
# loaded with the server role (coap.serve) and by the first CON or NON response the client role gets, so an
# endpoint that only requests with piggybacked answers never holds this code. Functions of the endpoint:
# find (the live slot of a Message ID from a peer), add (a new entry, answer pending), room / store (the
# answer's bytes into the ring), resend (a duplicate gets the stored answer again). The index (dd_index) has a
# bucket per MID low byte holding the slot of its newest entry, or 0: a MID whose bucket is empty is new
# without a look at the slots (a dict made again each lap cost ~4k VM instructions per request, a tenth of a
# plain GET's answer).
try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

try:
    from time import ticks_diff, ticks_add
except ImportError:  # CPython
    from coap._cpython import ticks_diff, ticks_add


# Deduplication cache (RFC 7252 4.5): a ring of `dedup_limit` slots in arrival order, kept in one flat list
# (nothing is allocated per message, so long-lived answers never fragment the heap), and the answers' bytes
# in one preallocated ring buffer of 2 x max_message_size. Every entry lives EXCHANGE_LIFETIME, so arrival
# order is expiry order and the slot reused next is the oldest. The list starts with the cache's own state:
_DD_NEXT = const(0)   # the slot reused next
_DD_W = const(1)      # ring write offset
_DD_LAP = const(2)    # ring lap: bumped each time the writes wrap (a small int for ever: 2**62 laps)
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


def find(ep, remote, mid, t):
    """The live slot of (remote, mid) at ticks_ms t, or -1."""
    d = ep.dd
    s = ep.dd_index[mid & 255]
    if not s:
        return -1
    if d[s] != mid or d[s + _D_REMOTE] != remote:  # the bucket's newest entry is another (an older one of
        s = -1                                       # this MID hides behind it) or another peer's: look at
        for i in range(_DD_HEAD, len(d), _D_N):      # every slot
            if d[i] == mid and d[i + _D_REMOTE] == remote:
                s = i
                break
    if s >= 0 and ticks_diff(d[s + _D_EXP], t) <= 0:
        return -1
    return s


def add(ep, remote, mid, t):
    """A new entry for (remote, mid) at ticks_ms t, answer pending; returns its slot."""
    d = ep.dd
    n = -d[_DD_END]
    while n > 0:  # every slot at once, with the first entry: never regrown. A fragmented heap may have no
        try:      # hole for them all (2 KB for 32): then fewer, so that the message is still taken
            d.extend([-1, None, 0, 0, 0, 0, 0, None] * n)  # free slots
            d[_DD_END] = len(d)
            break
        except MemoryError:
            if n == 1:
                raise
            n >>= 1
    s = d[_DD_NEXT]
    d[_DD_NEXT] = s + _D_N if s + _D_N < d[_DD_END] else _DD_HEAD
    # The index: per bucket (the MID's low byte) the slot of its newest entry, 0 when none is live. Slots
    # are reused oldest first, so an entry leaves its bucket with the slot unless a newer one took it.
    ix = ep.dd_index
    o = d[s]
    if o >= 0 and ix[o & 255] == s:
        ix[o & 255] = 0
    ix[mid & 255] = s
    d[s] = mid
    d[s + _D_REMOTE] = remote
    d[s + _D_EXP] = ticks_add(t, ep.params.exchange_lifetime)
    d[s + _D_STATE] = 0
    d[s + _D_OBJ] = None
    return s


def room(ep, s, n, state=1, src=None):
    """Room in the ring for the n-byte answer of slot s: a memoryview the caller writes the answer into
    (None when n does not fit the ring)."""
    d = ep.dd
    ring = d[_DD_RING]
    if ring is None:
        try:
            ring = d[_DD_RING] = memoryview(bytearray(2 * ep.t.max_message_size))
        except MemoryError:  # no hole for the ring (a fragmented heap): the answer is kept as an object
            return None       # (store), the ring is tried again with the next one
    size = len(ring)
    if n > size:
        return None
    w = d[_DD_W]
    if w + n > size:
        w = 0
        d[_DD_LAP] += 1
    d[s + _D_STATE] = state
    d[s + _D_OFF] = w
    d[s + _D_LEN] = n
    d[s + _D_LAP] = d[_DD_LAP]
    d[s + _D_OBJ] = src
    d[_DD_W] = w + n
    return ring[w:w + n]


def store(ep, s, data, state=1, src=None):
    # The answer's bytes go into the ring; one bigger than the ring is kept as an object.
    v = room(ep, s, len(data), state, src)
    if v is None:
        d = ep.dd
        d[s + _D_STATE] = 3
        d[s + _D_OBJ] = data  # an answer is never changed after it is sent: no copy
    else:
        v[:] = data


def resend(ep, s, mtype):
    # A duplicate of slot s: a CON gets the stored answer again, a NON nothing. False when the answer
    # was lost to the ring: the message is then taken as new (liveness over exactly-once).
    d = ep.dd
    st = d[s + _D_STATE]
    if not st:
        return True  # still being answered
    if st == 3:
        v = d[s + _D_OBJ]
    else:
        off = d[s + _D_OFF]
        lap = d[_DD_LAP] - d[s + _D_LAP]  # laps since it was written (>= 0)
        if lap > 1 or lap and off < d[_DD_W]:
            return False  # the ring has gone round over it
        v = d[_DD_RING][off:off + d[s + _D_LEN]]
        if st == 2:  # a Block2 block: read it again from the same source
            src, soff, n = d[s + _D_OBJ]
            p = src.read(soff, n)
            if p:
                v = bytes(v) + b"\xff" + p
    if not mtype:  # a CON (type 0)
        ep.t.send(v, d[s + _D_REMOTE])
    return True
