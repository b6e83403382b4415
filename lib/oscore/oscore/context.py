# OSCORE security context (RFC 8613 section 3): AES-CCM-16-64-128 (COSE alg 10) keys and Common IV derived with
# HKDF-SHA-256 from raw key material (the hand-over point for EAP-NOOB / CoAP-EAP), the sender sequence number,
# the recipient's replay window (section 7.4), and the freshness state after a reboot (Appendix B.1).
#
# Sequence numbers survive reboots through a store (store.FileStore or anything with get/put): the context
# writes a bound n + K before it uses sequence number n, so there is at most one write per K messages, and a
# context that boots from a stored bound starts at that bound: a reboot never reuses a nonce. Such a context
# has lost its replay window, so it answers the first request with an Echo challenge (oscore.EchoRequired).
from crypto.ccm import AesCcm
from crypto.kdf import hkdf_expand, hkdf_extract

from oscore import err

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

ALG = const(10)  # AES-CCM-16-64-128
MAX_SEQ = (1 << 40) - 1  # section 7.2.1
WINDOW = const(32)  # replay window entries (section 3.2.2 default)
_WINDOW_MASK = (1 << WINDOW) - 1
_NONCE_LEN = const(13)
_ID_MAX = const(7)  # nonce length - 6
_ECHO_LEN = const(8)


def _bstr(b):
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
    return b"".join((b"\x85", _bstr(ident), b"\xf6" if id_context is None else _bstr(id_context), b"\x0a",
                     b"\x63Key" if kind == "Key" else b"\x62IV", bytes((length,))))


def derive(secret, salt, sender_id, recipient_id, id_context=None):
    """(Sender Key, Recipient Key, Common IV) from the Master Secret and Salt."""
    prk = hkdf_extract(salt, secret)
    return (hkdf_expand(prk, info(sender_id, id_context, "Key", 16), 16),
            hkdf_expand(prk, info(recipient_id, id_context, "Key", 16), 16),
            hkdf_expand(prk, info(b"", id_context, "IV", _NONCE_LEN), _NONCE_LEN))


def _id_nonce(iv, ident):
    out = bytearray(iv)
    out[0] ^= len(ident)
    off = 8 - len(ident)
    for i in range(len(ident)):
        out[off + i] ^= ident[i]
    return bytes(out)


def piv_bytes(n):
    """Partial IV encoding of a sequence number: no leading zero bytes, 0 as b'\\x00' (section 5)."""
    return n.to_bytes(1 if n < 0x100 else 2 if n < 0x10000 else 3 if n < 0x1000000 else 4 if n < 1 << 32 else 5,
                      "big")


class Context:
    """One security context between this endpoint (Sender ID) and one peer (Recipient ID).

    store/name: where the sender sequence number bound is kept (None: in RAM only, for tests and contexts that
    are derived afresh at every boot); k: sequence numbers per store write. pure=True: AES without cryptolib.
    class_i: option numbers this application treats as Class I (integrity-protected outer options; RFC 8613
    defines none)."""

    def __init__(self, secret, salt=b"", sender_id=b"", recipient_id=b"", id_context=None, store=None,
                 name="oscore", k=64, pure=False, class_i=()):
        if len(sender_id) > _ID_MAX or len(recipient_id) > _ID_MAX:
            raise err(1)
        if id_context is not None and len(id_context) > 255:
            raise err(2)
        if sender_id == recipient_id:
            raise err(3)
        if k < 1:
            raise err(4)
        self.sender_id = bytes(sender_id)
        self.recipient_id = bytes(recipient_id)
        self.id_context = None if id_context is None else bytes(id_context)
        skey, rkey, iv = derive(secret, salt, self.sender_id, self.recipient_id, self.id_context)
        # The nonce of an ID without its Partial IV (section 5.2), for the two IDs this context uses.
        self.sender_base = _id_nonce(iv, self.sender_id)
        self.recipient_base = _id_nonce(iv, self.recipient_id)
        self.sender = AesCcm(skey, 8, pure)
        self.recipient = AesCcm(rkey, 8, pure)
        self.class_i = class_i
        self.store = store
        self.name = name
        self.k = k
        self.top = -1  # highest accepted request sequence number
        self.bits = 0  # bit d: sequence number top - d was accepted
        self.echo = None  # the Echo value a challenge sent, until a request returns it
        seq = 0
        self.synced = True  # False: the replay window was lost, requests need an Echo round trip
        if store is not None:
            v = store.get(name)
            if v is not None:
                if len(v) != 5:
                    raise err(5)
                seq = int.from_bytes(v, "big")
                self.synced = False
        self.seq = seq
        self.limit = seq  # sequence numbers below this are covered by the stored bound
        if store is not None:
            self._persist()

    def _persist(self):
        bound = min(self.limit + self.k, MAX_SEQ + 1)
        self.store.put(self.name, bound.to_bytes(5, "big"))
        self.limit = bound

    def next_piv(self):
        """The Partial IV for the next message this context sends; refuses once the numbers run out."""
        n = self.seq
        if n > MAX_SEQ:
            raise err(6)
        if self.store is not None and n >= self.limit:
            self._persist()  # before n is used: a failed write leaves n unused
        self.seq = n + 1
        return piv_bytes(n)

    def nonce(self, id_piv, piv):
        """AEAD nonce (section 5.2): [S | ID_PIV padded to 7 | PIV padded to 5] XOR Common IV."""
        out = bytearray(self.sender_base if id_piv == self.sender_id else self.recipient_base)
        off = _NONCE_LEN - len(piv)
        for i in range(len(piv)):
            out[off + i] ^= piv[i]
        return out

    def fresh(self, seq):
        """Whether a request with this sequence number is not a replay (section 7.4)."""
        d = self.top - seq
        if d < 0:
            return True
        return d < WINDOW and not (self.bits >> d) & 1

    def accept(self, seq):
        """Mark seq as received (after the request verified)."""
        d = seq - self.top
        if d > 0:
            self.bits = ((self.bits << d) | 1) & _WINDOW_MASK if d < WINDOW else 1
            self.top = seq
        else:
            self.bits |= 1 << -d

    def challenge(self):
        """The Echo value for a challenge (made once, kept until a request returns it)."""
        if self.echo is None:
            from crypto.util import random_bytes
            self.echo = random_bytes(_ECHO_LEN)
        return self.echo

    def resync(self, seq):
        """A request returned the Echo: its sequence number becomes the replay window's lower limit."""
        self.top = seq
        self.bits = _WINDOW_MASK
        self.synced = True
        self.echo = None
