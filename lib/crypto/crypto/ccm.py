# AES-CCM (RFC 3610; NIST SP 800-38C). OSCORE and COSE alg 10 use AES-CCM-16-64-128: 13-byte nonce, 8-byte tag.
#
# The block cipher comes from crypto.aes.new (cryptolib when the firmware has it). The CBC-MAC and the CTR
# keystream run block by block through two 16-byte buffers, so the only allocation proportional to the message
# is its output.
from crypto import CryptoError, InvalidTag
from crypto import aes as _aes
from crypto.util import ct_equal


def _xor_into(dst, doff, src, soff, n):
    for i in range(n):
        dst[doff + i] ^= src[soff + i]


def _xor3(dst, doff, a, aoff, b, n):
    # dst[doff:doff+n] = a[aoff:aoff+n] ^ b[:n]
    for i in range(n):
        dst[doff + i] = a[aoff + i] ^ b[i]


class AesCcm:
    """AES-CCM with one key: tag_len M in 4..16 (even), nonce of 7..13 bytes (L = 15 - nonce length)."""

    def __init__(self, key, tag_len=8, pure=False, cipher=None):
        """pure=True avoids cryptolib; cipher= supplies the block cipher object itself (tests, benchmarks)."""
        if tag_len not in (4, 6, 8, 10, 12, 14, 16):
            raise CryptoError("CCM tag length must be 4, 6, ..., 16")
        self._cipher = cipher if cipher is not None else _aes.new(key, pure)
        self.tag_len = tag_len

    def __repr__(self):
        return "<AesCcm tag_len=%d key hidden>" % self.tag_len

    def _check_nonce(self, nonce, msg_len):
        nl = len(nonce)
        if nl < 7 or nl > 13:
            raise CryptoError("CCM nonce must be 7..13 bytes")
        q = 15 - nl
        if q < 8 and msg_len >= 1 << (8 * q):
            raise CryptoError("CCM message too long for this nonce length")
        return q

    def _mac(self, nonce, q, aad, msg, msg_len, x):
        """CBC-MAC of B0 | encoded aad | msg into x (16-byte bytearray)."""
        enc = self._cipher.encrypt_into
        nl = 15 - q
        x[0] = (0x40 if len(aad) else 0) | (((self.tag_len - 2) // 2) << 3) | (q - 1)
        x[1:1 + nl] = nonce
        n = msg_len
        for i in range(15, nl, -1):
            x[i] = n & 0xFF
            n >>= 8
        enc(x, x)
        la = len(aad)
        if la:
            # length prefix, then the aad, all packed into 16-byte blocks
            if la < 0xFF00:
                hdr = bytes((la >> 8, la & 0xFF))
            elif la < 1 << 32:
                hdr = b"\xff\xfe" + la.to_bytes(4, "big")
            else:
                hdr = b"\xff\xff" + la.to_bytes(8, "big")
            _xor_into(x, 0, hdr, 0, len(hdr))
            pos = len(hdr)
            off = 0
            while off < la:
                take = min(16 - pos, la - off)
                _xor_into(x, pos, aad, off, take)
                off += take
                pos += take
                if pos == 16:
                    enc(x, x)
                    pos = 0
            if pos:
                enc(x, x)
        off = 0
        while off < msg_len:
            take = min(16, msg_len - off)
            _xor_into(x, 0, msg, off, take)
            enc(x, x)
            off += take

    def _ctr(self, nonce, q, src, dst, n, ks, ctr):
        """dst[:n] = src[:n] XOR keystream blocks A_1, A_2, ...; ctr holds A_0 on entry."""
        enc = self._cipher.encrypt_into
        off = 0
        i = 1
        while off < n:
            c = i
            for j in range(15, 15 - q, -1):
                ctr[j] = c & 0xFF
                c >>= 8
            enc(ctr, ks)
            take = min(16, n - off)
            _xor3(dst, off, src, off, ks, take)
            off += take
            i += 1

    def _a0(self, nonce, q):
        ctr = bytearray(16)
        ctr[0] = q - 1
        ctr[1:16 - q] = nonce
        return ctr

    def encrypt(self, nonce, plaintext, aad=b""):
        n = len(plaintext)
        q = self._check_nonce(nonce, n)
        m = self.tag_len
        x = bytearray(16)
        self._mac(nonce, q, aad, plaintext, n, x)
        out = bytearray(n + m)
        ks = bytearray(16)
        ctr = self._a0(nonce, q)
        self._cipher.encrypt_into(ctr, ks)
        _xor3(out, n, x, 0, ks, m)  # tag = T xor first M bytes of S_0
        self._ctr(nonce, q, plaintext, out, n, ks, ctr)
        return bytes(out)

    def decrypt(self, nonce, data, aad=b""):
        m = self.tag_len
        if len(data) < m:
            raise InvalidTag("CCM: ciphertext shorter than the tag")
        n = len(data) - m
        q = self._check_nonce(nonce, n)
        out = bytearray(n)
        ks = bytearray(16)
        ctr = self._a0(nonce, q)
        self._ctr(nonce, q, data, out, n, ks, ctr)
        x = bytearray(16)
        self._mac(nonce, q, aad, out, n, x)
        for j in range(15, 15 - q, -1):
            ctr[j] = 0
        self._cipher.encrypt_into(ctr, ks)
        _xor_into(x, 0, ks, 0, m)
        if not ct_equal(memoryview(x)[:m], memoryview(data)[n:]):
            for i in range(n):
                out[i] = 0
            raise InvalidTag("CCM: authentication tag mismatch")
        return bytes(out)


def ccm_encrypt(key, nonce, plaintext, aad=b"", tag_len=8):
    return AesCcm(key, tag_len).encrypt(nonce, plaintext, aad)


def ccm_decrypt(key, nonce, data, aad=b"", tag_len=8):
    return AesCcm(key, tag_len).decrypt(nonce, data, aad)
