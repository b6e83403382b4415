# AES-CCM (RFC 3610; NIST SP 800-38C). OSCORE and COSE alg 10 use AES-CCM-16-64-128: 13-byte nonce, 8-byte tag.
#
# The block cipher comes from crypto.aes.new (cryptolib when the firmware has it). The CBC-MAC and the CTR
# keystream run block by block through two 16-byte buffers, so the only allocation proportional to the message
# is its output.
from crypto import CryptoError, InvalidTag
from crypto import aes as _aes
from crypto.util import ct_equal


class AesCcm:
    """AES-CCM with one key: tag_len M in 4..16 (even), nonce of 7..13 bytes (L = 15 - nonce length). It keeps
    only the cipher's bound encrypt_into: its repr shows no key material."""

    def __init__(self, key, tag_len=8, pure=False, cipher=None):
        """pure=True avoids cryptolib; cipher= supplies the block cipher object itself (tests, benchmarks)."""
        if tag_len not in (4, 6, 8, 10, 12, 14, 16):
            raise CryptoError(3)  # CCM tag length must be 4, 6, ..., 16
        self._enc = (cipher if cipher is not None else _aes.new(key, pure)).encrypt_into
        self.tag_len = tag_len

    def _crypt(self, nonce, src, n):
        """Check the nonce; src[:n] XOR the keystream A_1, A_2, ... in a new buffer of n + tag_len bytes.
        Returns (buffer, q, A_0)."""
        nl = len(nonce)
        if nl < 7 or nl > 13:
            raise CryptoError(4)  # CCM nonce must be 7..13 bytes
        q = 15 - nl
        if q < 8 and n >> (8 * q):
            raise CryptoError(5)  # CCM message too long for this nonce length
        dst = bytearray(n + self.tag_len)
        enc = self._enc
        ctr = bytearray(16)
        ctr[0] = q - 1
        ctr[1:16 - q] = nonce
        ks = bytearray(16)
        pos = 0
        i = 1
        while pos < n:
            c = i
            for j in range(15, 15 - q, -1):
                ctr[j] = c & 0xFF
                c >>= 8
            enc(ctr, ks)
            for j in range(min(16, n - pos)):
                dst[pos + j] = src[pos + j] ^ ks[j]
            pos += 16
            i += 1
        for j in range(15, 15 - q, -1):
            ctr[j] = 0
        return dst, q, ctr

    def _tag(self, nonce, q, aad, msg, n, a0):
        """CBC-MAC of B0 | encoded aad | msg, encrypted with A_0: the full 16-byte T xor S_0 (a bytearray)."""
        enc = self._enc
        x = bytearray(16)
        nl = 15 - q
        la = len(aad)
        x[0] = (0x40 if la else 0) | (((self.tag_len - 2) // 2) << 3) | (q - 1)
        x[1:1 + nl] = nonce
        m = n
        for i in range(15, nl, -1):
            x[i] = m & 0xFF
            m >>= 8
        enc(x, x)
        # the aad after its length prefix (one copy of the aad, which is short), then the message, each packed
        # into 16-byte blocks
        if la < 0xFF00:
            head = la.to_bytes(2, "big")
        else:
            head = (b"\xff\xfe" + la.to_bytes(4, "big")) if la >> 32 == 0 else (b"\xff\xff" + la.to_bytes(8, "big"))
        for data in ((head + bytes(aad)) if la else b"", msg):
            total = len(data) if data is not msg else n
            off = 0
            while off < total:
                for j in range(min(16, total - off)):
                    x[j] ^= data[off + j]
                enc(x, x)
                off += 16
        s0 = bytearray(16)
        enc(a0, s0)
        for j in range(16):
            x[j] ^= s0[j]
        return x

    def encrypt(self, nonce, plaintext, aad=b""):
        n = len(plaintext)
        out, q, a0 = self._crypt(nonce, plaintext, n)
        out[n:] = memoryview(self._tag(nonce, q, aad, plaintext, n, a0))[:self.tag_len]
        return bytes(out)

    def decrypt(self, nonce, data, aad=b""):
        m = self.tag_len
        n = len(data) - m
        if n < 0:
            raise InvalidTag(6)  # CCM: ciphertext shorter than the tag
        out, q, a0 = self._crypt(nonce, data, n)
        if not ct_equal(memoryview(self._tag(nonce, q, aad, out, n, a0))[:m], memoryview(data)[n:]):
            for i in range(n):
                out[i] = 0
            raise InvalidTag(7)  # CCM: authentication tag mismatch
        return bytes(memoryview(out)[:n])
