# Key derivation (RFC 8613 section 3.2): Sender/Recipient Keys and the Common IV from the Master Secret and Salt
# with HKDF-SHA-256, and the rest of making a Context (its checks, the stored sequence number bound). Used when a
# context is made (boot, re-keying): oscore.Context loads it then.
from crypto.kdf import hkdf_expand, hkdf_extract

from oscore import err
from oscore.bound import store_bound

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const  # CPython: coap's one fallback

_ID_MAX = const(7)  # nonce length - 6


def bstr(b):
    """The CBOR byte string b (head + bytes)."""
    n = len(b)
    if n < 24:
        return bytes((0x40 | n,)) + b
    if n < 256:
        return bytes((0x58, n)) + b
    if n < 65536:
        return bytes((0x59, n >> 8, n & 255)) + b
    raise err(0)


def info(ident, id_context, kind, length):
    """The HKDF info: CBOR [id, id_context / nil, 10, "Key" / "IV", L] (section 3.2.1)."""
    return b"".join((b"\x85", bstr(ident), b"\xf6" if id_context is None else bstr(id_context), b"\x0a",
                     b"\x63Key" if kind == "Key" else b"\x62IV", bytes((length,))))


def derive(secret, salt, sender_id, recipient_id, id_context=None):
    """(Sender Key, Recipient Key, Common IV) from the Master Secret and Salt."""
    prk = hkdf_extract(salt, secret)
    return (hkdf_expand(prk, info(sender_id, id_context, "Key", 16), 16),
            hkdf_expand(prk, info(recipient_id, id_context, "Key", 16), 16),
            hkdf_expand(prk, info(b"", id_context, "IV", 13), 13))


def id_nonce(iv, ident):
    """The nonce of an ID before its Partial IV is XORed in (section 5.2): [len | ID padded to 7 | 0 * 5] ^ IV."""
    out = bytearray(iv)
    out[0] ^= len(ident)
    off = 8 - len(ident)
    for i in range(len(ident)):
        out[off + i] ^= ident[i]
    return bytes(out)


def setup(ctx, secret, salt=b"", sender_id=b"", recipient_id=b"", id_context=None, store=None, name="oscore", k=64,
          pure=False, class_i=()):
    """Context.__init__: the checks, the keys and nonce bases, the sequence number bound from the store."""
    if len(sender_id) > _ID_MAX or len(recipient_id) > _ID_MAX:
        raise err(1)
    if id_context is not None and len(id_context) > 255:
        raise err(2)
    if sender_id == recipient_id:
        raise err(3)
    if k < 1:
        raise err(4)
    ctx.sender_id = bytes(sender_id)
    ctx.recipient_id = bytes(recipient_id)
    ctx.id_context = None if id_context is None else bytes(id_context)
    ctx.sender_key, ctx.recipient_key, iv = derive(secret, salt, ctx.sender_id, ctx.recipient_id, ctx.id_context)
    # The nonce of an ID without its Partial IV (section 5.2), for the two IDs this context uses.
    ctx.sender_base = id_nonce(iv, ctx.sender_id)
    ctx.recipient_base = id_nonce(iv, ctx.recipient_id)
    ctx.pure = pure
    ctx.class_i = class_i
    ctx.store = store
    ctx.name = name
    ctx.k = k
    ctx.top = -1  # highest accepted request sequence number
    ctx.bits = 0  # bit d: sequence number top - d was accepted
    ctx.echo = None  # the Echo value a challenge sent, until a request returns it
    seq = 0
    ctx.synced = True  # False: the replay window was lost, requests need an Echo round trip
    if store is not None:
        v = store.get(name)
        if v is not None:
            if len(v) != 5:
                raise err(5)
            seq = int.from_bytes(v, "big")
            ctx.synced = False
    ctx.seq = seq
    ctx.limit = seq  # sequence numbers below this are covered by the stored bound (all of them without a store)
    store_bound(ctx)  # the first bound (Context.next_piv stores the later ones)

