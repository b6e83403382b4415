# AES-CCM (RFC 3610; NIST SP 800-38C). OSCORE and COSE alg 10 use AES-CCM-16-64-128: 13-byte nonce, 8-byte tag.
#
# The block cipher comes from crypto.aes.new (cryptolib when the firmware has it). The CBC-MAC and the CTR
# keystream run block by block through two 16-byte buffers, so the only allocation proportional to the message
# is its output: a new buffer (encrypt, decrypt), or the caller's (encrypt_in_place, decrypt_into: OSCORE
# encrypts the message it encoded and decrypts into the datagram it decodes, with no copy of either).
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

    def _a0(self, nonce, n):
        """Check the nonce and the message length n; the counter block A_0 (flags, nonce, counter 0)."""
        nl = len(nonce)
        if nl < 7 or nl > 13:
            raise CryptoError(4)  # CCM nonce must be 7..13 bytes
        q = 15 - nl
        if q < 8 and n >> (8 * q):
            raise CryptoError(5)  # CCM message too long for this nonce length
        ctr = bytearray(16)
        ctr[0] = q - 1
        ctr[1:16 - q] = nonce
        return ctr

    def _crypt(self, ctr, src, n, dst, off):
        """dst[off:off + n] = src[:n] XOR the keystream A_1, A_2, ... (src may be dst, off 0: in place). ctr is
        A_0 and is A_0 again on return."""
        enc = self._enc
        q = ctr[0] + 1
        ks = bytearray(16)
        pos = 0
        i = 1
        while pos < n:
            c = i
            for j in range(15, 15 - q, -1):
                ctr[j] = c & 0xFF
                c >>= 8
            enc(ctr, ks)
            d = off + pos
            for j in range(min(16, n - pos)):
                dst[d + j] = src[pos + j] ^ ks[j]
            pos += 16
            i += 1
        for j in range(15, 15 - q, -1):
            ctr[j] = 0

    def _mac(self, x, data, off, end):
        """CBC-MAC data[off:end] into x, packed into 16-byte blocks (the last one zero-padded)."""
        enc = self._enc
        while off < end:
            for j in range(min(16, end - off)):
                x[j] ^= data[off + j]
            enc(x, x)
            off += 16

    def _tag(self, nonce, aad, msg, mo, n, a0):
        """CBC-MAC of B0 | encoded aad | msg[mo:mo + n], encrypted with A_0: the full 16-byte T xor S_0 (a
        bytearray)."""
        enc = self._enc
        x = bytearray(16)
        nl = len(nonce)
        la = len(aad)
        x[0] = (0x40 if la else 0) | (((self.tag_len - 2) // 2) << 3) | (14 - nl)
        x[1:1 + nl] = nonce
        m = n
        for i in range(15, nl, -1):
            x[i] = m & 0xFF
            m >>= 8
        enc(x, x)
        if la:  # the aad after its length prefix (one copy of the aad, which is short)
            if la < 0xFF00:
                head = la.to_bytes(2, "big")
            else:
                head = (b"\xff\xfe" + la.to_bytes(4, "big")) if la >> 32 == 0 else (b"\xff\xff" + la.to_bytes(8, "big"))
            head += bytes(aad)
            self._mac(x, head, 0, len(head))
        self._mac(x, msg, mo, mo + n)
        s0 = bytearray(16)
        enc(a0, s0)
        for j in range(16):
            x[j] ^= s0[j]
        return x

    def encrypt(self, nonce, plaintext, aad=b""):
        n = len(plaintext)
        a0 = self._a0(nonce, n)
        out = bytearray(n + self.tag_len)
        self._crypt(a0, plaintext, n, out, 0)
        out[n:] = memoryview(self._tag(nonce, aad, plaintext, 0, n, a0))[:self.tag_len]
        return bytes(out)

    def encrypt_in_place(self, nonce, buf, aad=b""):
        """Encrypt the bytearray buf in place and append the tag (buf grows by tag_len bytes); returns buf."""
        n = len(buf)
        a0 = self._a0(nonce, n)
        t = self._tag(nonce, aad, buf, 0, n, a0)  # the MAC is of the plaintext: before it is overwritten
        self._crypt(a0, buf, n, buf, 0)
        for j in range(self.tag_len):
            buf.append(t[j])
        return buf

    def decrypt(self, nonce, data, aad=b""):
        n = len(data) - self.tag_len
        if n < 0:
            raise InvalidTag(6)  # CCM: ciphertext shorter than the tag
        out = bytearray(n)
        self.decrypt_into(nonce, data, aad, out)
        return bytes(out)

    def decrypt_into(self, nonce, data, aad, out, off=0):
        """Verify data (ciphertext | tag) and write its plaintext into out[off:off + n], n = len(data) - tag_len;
        returns n. On a tag mismatch out[off:off + n] is zeroed before InvalidTag is raised."""
        m = self.tag_len
        n = len(data) - m
        if n < 0:
            raise InvalidTag(6)  # CCM: ciphertext shorter than the tag
        if off < 0 or len(out) - off < n:
            raise CryptoError(29)  # CCM: the output buffer is too small
        a0 = self._a0(nonce, n)
        self._crypt(a0, data, n, out, off)
        if not ct_equal(memoryview(self._tag(nonce, aad, out, off, n, a0))[:m], memoryview(data)[n:]):
            for i in range(off, off + n):
                out[i] = 0
            raise InvalidTag(7)  # CCM: authentication tag mismatch
        return n
