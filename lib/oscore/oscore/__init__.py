# OSCORE (RFC 8613) with Echo (RFC 9175) freshness after a reboot. This file: OscoreError and the security
# context (Context, below). The other modules:
#   oscore.derive   the key derivation and the checks of making a Context (loaded with the first one).
#   oscore.transform  protect/unprotect of requests, responses and notifications over coap.msg messages (the
#                   server role; oscore.client the client role), and OSCORE on a CoAP endpoint (the coap
#                   transform seam), both roles; oscore.outer the outer Block-wise of large protected messages
#                   (section 4.1.3.4.2).
#   oscore.answer   the unprotected section 8 error answers, the Echo challenge / retry and EchoRequired
#                   (loaded on the first failure or reboot).
#   oscore.config   a context from the board's config.json (as `hourglass oscore` writes it).
#
# The security context (section 3): AES-CCM-16-64-128 (COSE alg 10) keys and Common IV derived with HKDF-SHA-256
# from raw key material (the hand-over point for EAP-NOOB / CoAP-EAP), the sender sequence number, the
# recipient's replay window (section 7.4), and the freshness state after a reboot (Appendix B.1).
#
# Sequence numbers survive reboots through a store (store.FileStore or anything with get/put): the context
# writes a bound n + K before it uses sequence number n, so there is at most one write per K messages, and a
# context that boots from a stored bound starts at that bound: a reboot never reuses a nonce. Such a context
# has lost its replay window, so it answers the first request with an Echo challenge (oscore.answer.EchoRequired).
try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const  # CPython: coap's one fallback

MAX_SEQ = (1 << 40) - 1  # section 7.2.1
WINDOW = const(32)  # replay window entries (section 3.2.2 default)
_NONCE_LEN = const(13)
del const  # only the constants above use it (and a module global costs RAM)
# AES-CCM objects are shared, the last CIPHERS built: a context keeps only its two 16-byte keys (a cryptolib
# cipher costs ~0.5 KB on the VM), and the keys in use have their cipher built once. An application with more
# contexts in use at once than CIPHERS / 2 raises CIPHERS, or each message builds its cipher again.
CIPHERS = 2
_ciphers = None  # [(key, pure, AesCcm), ...], newest first, made on first use


class OscoreError(ValueError):
    """An OSCORE failure. code is the CoAP code of the unprotected error answer (0: none is sent), diag its
    diagnostic payload (RFC 8613 section 8); err(n) sets them (class defaults: no answer)."""
    code = 0
    diag = None


def err(n):
    """The OscoreError number n of oscore.errtext (its text, code and diagnostic payload)."""
    from oscore.errtext import ERRORS
    t = ERRORS[n]
    e = OscoreError(t[0])
    e.code = t[1]
    e.diag = t[2]
    return e


def aead(key, pure):
    """The AES-CCM-16-64-128 object for key (shared; built when it is not among the last CIPHERS built)."""
    global _ciphers
    c = _ciphers
    if c is None:
        c = _ciphers = []
    else:
        for e in c:
            if e[0] == key and e[1] == pure:
                return e[2]
    from crypto.ccm import AesCcm
    e = (key, pure, AesCcm(key, 8, pure))
    c.insert(0, e)
    del c[CIPHERS:]
    return e[2]


class Context:
    """One security context between this endpoint (Sender ID) and one peer (Recipient ID).

    store/name: where the sender sequence number bound is kept (None: in RAM only, for tests and contexts that
    are derived afresh at every boot); k: sequence numbers per store write. pure=True: AES without cryptolib.
    class_i: option numbers this application treats as Class I (integrity-protected outer options; RFC 8613
    defines none)."""

    def __init__(self, *args, **kw):
        # (secret, salt=b"", sender_id=b"", recipient_id=b"", id_context=None, store=None, name="oscore", k=64,
        # pure=False, class_i=()), as oscore.derive.setup takes them: making a context is rare, its code loads then
        from oscore.derive import setup
        setup(self, *args, **kw)

    def next_piv(self):
        """The Partial IV for the next message this context sends; refuses once the numbers run out."""
        n = self.seq
        if n > MAX_SEQ:
            raise err(6)
        if n >= self.limit:  # the next bound, stored before n is used: a failed write leaves n unused
            from oscore.bound import store_bound
            store_bound(self)
        self.seq = n + 1
        k = 1  # the Partial IV: no leading zero bytes, 0 as b"\x00" (section 5)
        while n >> (k << 3):
            k += 1
        return n.to_bytes(k, "big")

    def nonce(self, kid, piv):
        """AEAD nonce (section 5.2): [S | ID_PIV padded to 7 | PIV padded to 5] XOR Common IV; kid: ID_PIV, the
        Sender or Recipient ID."""
        out = bytearray(self.sender_base if kid == self.sender_id else self.recipient_base)
        j = len(piv)
        i = _NONCE_LEN - j
        while j:  # not a for loop: its iterator's slots would put the call's frame on the heap
            j -= 1
            out[i + j] ^= piv[j]
        return out
