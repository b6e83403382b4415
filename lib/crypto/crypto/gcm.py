# AES-GCM (NIST SP 800-38D) and AES-CTR, both streaming: SUIT decrypts a payload chunk by chunk while it is
# written and hashed, so neither mode ever needs the whole message in RAM.
#
#   AesGcm(key).encrypt(iv, plaintext, aad) -> ciphertext || tag       .decrypt(iv, data, aad) -> plaintext
#   AesGcm(key).decryptor(iv, aad) -> stream: update_into(src, dst) ..., finish(tag) (raises InvalidTag)
#   Ctr(cipher, counter_block, width=128): update_into(src, dst) (COSE A128CTR/A256CTR, RFC 9459)
#
# The block cipher is crypto.aes.new's (cryptolib when the firmware has it). GHASH multiplies with Shoup's
# 4-bit tables on 128-bit Python ints: 16 entries of H times a nibble and 16 reduction values.
from crypto import CryptoError, InvalidTag
from crypto import aes as _aes
from crypto.util import ct_equal

_R = 0xE1 << 120  # x^128 = x^7 + x^2 + x + 1, in GCM's bit-reflected order


def _gf_mult(x, y):
    """x*y in GF(2^128) bit by bit (only for building the tables)."""
    z = 0
    v = y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def _reduction_table():
    # Z * x^4 pushes Z's low four bits out past x^127; red[l] folds them back
    red = []
    for low in range(16):
        r = 0
        for j in range(4):
            if (low >> j) & 1:
                r ^= _R >> (3 - j)
        red.append(r)
    return tuple(red)


_RED = _reduction_table()


class _Ghash:
    def __init__(self, h):
        self._t = tuple(_gf_mult(n << 124, h) for n in range(16))
        self.y = 0
        self._buf = bytearray(16)
        self._fill = 0

    def _block(self, b):
        t = self._t
        red = _RED
        x = self.y ^ int.from_bytes(b, "big")
        z = 0
        for i in range(15, -1, -1):
            n = (x >> (8 * (15 - i))) & 0xFF
            z = (z >> 4) ^ red[z & 0xF] ^ t[n & 0xF]
            z = (z >> 4) ^ red[z & 0xF] ^ t[n >> 4]
        self.y = z

    def update(self, data):
        """Absorb data (any length); a partial block waits for more."""
        n = len(data)
        p = 0
        buf = self._buf
        if self._fill:
            take = min(16 - self._fill, n)
            buf[self._fill:self._fill + take] = data[0:take]
            self._fill += take
            p = take
            if self._fill < 16:
                return
            self._block(buf)
            self._fill = 0
        while n - p >= 16:
            self._block(data[p:p + 16])
            p += 16
        if p < n:
            buf[0:n - p] = data[p:n]
            self._fill = n - p

    def pad(self):
        """Zero-pad the pending partial block (GCM pads the AAD and the ciphertext separately)."""
        if self._fill:
            buf = self._buf
            for i in range(self._fill, 16):
                buf[i] = 0
            self._block(buf)
            self._fill = 0


class Ctr:
    """CTR keystream over a block cipher: counter_block is the first counter; the low `width` bits increment
    (128 for COSE AES-CTR, 32 for GCM). update_into works on any lengths and keeps its place between calls."""

    def __init__(self, cipher, counter_block, width=128):
        if len(counter_block) != 16:
            raise CryptoError("CTR counter block must be 16 bytes")
        self._cipher = cipher
        self._ctr = bytearray(counter_block)
        self._width = width
        self._ks = bytearray(16)
        self._used = 16  # keystream bytes of self._ks already consumed

    def _next(self):
        self._cipher.encrypt_into(self._ctr, self._ks)
        c = self._ctr
        i = 15
        stop = 15 - self._width // 8
        while i > stop:
            c[i] = (c[i] + 1) & 0xFF
            if c[i]:
                break
            i -= 1
        self._used = 0

    def update_into(self, src, dst):
        """dst[:len(src)] = src XOR keystream; dst may be src itself."""
        ks = self._ks
        used = self._used
        for i in range(len(src)):
            if used == 16:
                self._next()
                used = 0
            dst[i] = src[i] ^ ks[used]
            used += 1
        self._used = used

    def update(self, data):
        out = bytearray(len(data))
        self.update_into(data, out)
        return bytes(out)


class _GcmStream:
    def __init__(self, gcm, iv, aad, decrypting):
        self._h = _Ghash(gcm._h)
        j0 = gcm._j0(iv)
        self._tag_mask = gcm._cipher.encrypt_block(j0)
        ctr = bytearray(j0)
        _inc32(ctr)
        self._ctr = Ctr(gcm._cipher, ctr, 32)
        self._aad_len = len(aad)
        self._len = 0
        self._decrypting = decrypting
        self.tag_len = gcm.tag_len
        self._h.update(aad)
        self._h.pad()

    def update_into(self, src, dst):
        """Encrypt or decrypt src into dst (same length; may be the same buffer)."""
        self._len += len(src)
        if self._decrypting:
            self._h.update(src)
            self._ctr.update_into(src, dst)
        else:
            self._ctr.update_into(src, dst)
            self._h.update(memoryview(dst)[0:len(src)])

    def _tag(self):
        g = self._h
        g.pad()
        g.update((self._aad_len * 8).to_bytes(8, "big") + (self._len * 8).to_bytes(8, "big"))
        t = g.y.to_bytes(16, "big")
        m = self._tag_mask
        return bytes(t[i] ^ m[i] for i in range(self.tag_len))

    def finish(self, tag=None):
        """Encrypting: return the tag. Decrypting: check tag and raise InvalidTag if it differs."""
        t = self._tag()
        if not self._decrypting:
            return t
        if tag is None or not ct_equal(t, tag):
            raise InvalidTag("AES-GCM tag does not verify")
        return None


def _inc32(c):
    for i in range(15, 11, -1):
        c[i] = (c[i] + 1) & 0xFF
        if c[i]:
            return


class AesGcm:
    """AES-GCM with one key (16, 24 or 32 bytes), tag of 12..16 bytes (COSE A128GCM/A256GCM use 16)."""

    def __init__(self, key, tag_len=16, pure=False, cipher=None):
        if tag_len not in (12, 13, 14, 15, 16):
            raise CryptoError("GCM tag length must be 12..16 bytes")
        self._cipher = cipher if cipher is not None else _aes.new(key, pure)
        self._h = int.from_bytes(self._cipher.encrypt_block(bytes(16)), "big")
        self.tag_len = tag_len

    def __repr__(self):
        return "<AesGcm tag_len=%d key hidden>" % self.tag_len

    def _j0(self, iv):
        n = len(iv)
        if n == 0:
            raise CryptoError("GCM IV must not be empty")
        if n == 12:
            return bytes(iv) + b"\x00\x00\x00\x01"
        g = _Ghash(self._h)
        g.update(iv)
        g.pad()
        g.update(bytes(8) + (n * 8).to_bytes(8, "big"))
        return g.y.to_bytes(16, "big")

    def encryptor(self, iv, aad=b""):
        return _GcmStream(self, iv, aad, False)

    def decryptor(self, iv, aad=b""):
        """A stream whose plaintext is unauthenticated until finish(tag) returns: keep it out of use till then."""
        return _GcmStream(self, iv, aad, True)

    def encrypt(self, iv, plaintext, aad=b""):
        s = self.encryptor(iv, aad)
        out = bytearray(len(plaintext) + self.tag_len)
        s.update_into(plaintext, out)
        out[len(plaintext):] = s.finish()
        return bytes(out)

    def decrypt(self, iv, data, aad=b""):
        n = len(data) - self.tag_len
        if n < 0:
            raise InvalidTag("AES-GCM input shorter than its tag")
        mv = memoryview(data)
        s = self.decryptor(iv, aad)
        out = bytearray(n)
        s.update_into(mv[0:n], out)
        s.finish(mv[n:])
        return bytes(out)
