# AES key wrap (RFC 3394) with the default IV A6A6A6A6A6A6A6A6. COSE alg A128KW (-3) uses it with a 16-byte KEK.
from crypto import CryptoError, InvalidTag
from crypto import aes as _aes
from crypto.util import ct_equal

_IV = b"\xa6" * 8


def _check(kek, n):
    if n < 16 or n % 8:
        raise CryptoError(10)  # key wrap: data must be a multiple of 8 bytes, at least 16


def aes_key_wrap(kek, key, pure=False):
    n = len(key)
    _check(kek, n)
    cipher = _aes.new(kek, pure)
    blocks = n // 8
    r = bytearray(8 + n)
    r[0:8] = _IV
    r[8:] = key
    b = bytearray(16)
    t = 0
    for j in range(6):
        for i in range(1, blocks + 1):
            b[0:8] = r[0:8]
            b[8:16] = r[8 * i:8 * i + 8]
            cipher.encrypt_into(b, b)
            t += 1
            tt = t
            for k in range(7, -1, -1):
                b[k] ^= tt & 0xFF
                tt >>= 8
            r[0:8] = b[0:8]
            r[8 * i:8 * i + 8] = b[8:16]
    return bytes(r)


def aes_key_unwrap(kek, wrapped, pure=False):
    n = len(wrapped) - 8
    if n < 16 or n % 8:
        raise CryptoError(11)  # key unwrap: wrapped key must be a multiple of 8 bytes, at least 24
    cipher = _aes.new(kek, pure)
    blocks = n // 8
    r = bytearray(wrapped)
    b = bytearray(16)
    t = 6 * blocks
    for j in range(6):
        for i in range(blocks, 0, -1):
            b[0:8] = r[0:8]
            tt = t
            for k in range(7, -1, -1):
                b[k] ^= tt & 0xFF
                tt >>= 8
            b[8:16] = r[8 * i:8 * i + 8]
            cipher.decrypt_into(b, b)
            r[0:8] = b[0:8]
            r[8 * i:8 * i + 8] = b[8:16]
            t -= 1
    if not ct_equal(memoryview(r)[0:8], _IV):
        for i in range(len(r)):
            r[i] = 0
        raise InvalidTag(12)  # key unwrap: integrity check failed (wrong KEK or corrupted data)
    return bytes(r[8:])
