# Key derivation (RFC 8613 section 3.2): Sender/Recipient Keys and the Common IV from the Master Secret and Salt
# with HKDF-SHA-256. Used when a context is made (boot, re-keying), so oscore.context loads it then and lets it go.
from crypto.kdf import hkdf_expand, hkdf_extract

from oscore import err


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
