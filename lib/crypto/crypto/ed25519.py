# Ed25519 (RFC 8032): verify for the device, plus public_key/sign (deterministic; tests, tools, optional
# device signing) in crypto._ed25519_sign, loaded on first use. The point arithmetic is crypto._ed25519_math.
#
# A verification's heap peaked where SHA-512 (crypto.sha512 and its viper block function: ~5.5 KB of the VM
# heap) and the arithmetic (~5.7 KB) were loaded together: it hashes first, with this small module and the
# one-shot crypto._sha512_once, and on MicroPython releases what the hash loaded before it imports the arithmetic.

_L = 2**252 + 27742317777372353535851937790883648493


def verify(pub, message, sig):
    """True iff sig is a valid RFC 8032 Ed25519 signature of message under the 32-byte public key pub.

    Cofactorless check [S]B - [h]A == R by canonical encoding (as OpenSSL): S must be < L, A must decode,
    and a non-canonical R can never match."""
    if len(pub) != 32 or len(sig) != 64:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= _L:
        return False
    import sys

    # SHA-512 (R || A || M) with crypto._sha512_once; on MicroPython what it loaded is released again
    hashing = ("crypto._sha512_once", "crypto._sha512_viper", "crypto.sha512", "crypto._sha512_pure")
    loaded = [n for n in hashing if n not in sys.modules] if sys.implementation.name == "micropython" else ()
    from crypto._sha512_once import digest

    h = int.from_bytes(digest((sig[:32], pub, message)), "little") % _L
    if loaded:
        from crypto import release

        digest = None
        release(*loaded)
    from crypto._ed25519_math import _P, _decode_point, _double_scalar, _encode_point

    a_pt = _decode_point(pub)
    if a_pt is None:
        return False
    # [S]B - [h]A = [S]B + [h](-A), -(x, y) = (-x, y)
    x, y, z, _ = _double_scalar(s, h, (_P - a_pt[0], a_pt[1]))
    if z == 0:
        return False
    return _encode_point(x, y, z) == bytes(sig[:32])


def __getattr__(name):
    # public_key(seed): 32 bytes; sign(seed, message): deterministic RFC 8032 signature (64 bytes);
    # generate(): (private seed, public key)
    if name in ("public_key", "sign", "generate"):
        from crypto import _ed25519_sign
        return getattr(_ed25519_sign, name)
    raise AttributeError(name)
