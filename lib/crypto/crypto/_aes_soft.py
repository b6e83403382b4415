# AES-128/192/256 in Python (FIPS-197), for ports without cryptolib (the nRF52840) and for AES-192, which
# MicroPython's cryptolib lacks. crypto.aes.new() imports this module only then, so a board with cryptolib
# never pays for the tables and the round code. Use crypto.aes, not this module.
#
# PureAES is byte-oriented (S-box and xtime tables, the state in 16 locals): a 32-bit T-table version would
# overflow MicroPython's 31-bit small ints on the 32-bit boards and allocate a bigint per operation. ViperAES
# runs the same rounds compiled by the viper emitter (_aes_viper.py), after a FIPS-197 self-test.
from crypto import CryptoError

try:  # a port without the viper emitter (or CPython) cannot compile/import it; ValueError: a .mpy for another CPU
    from crypto import _aes_viper
except (ImportError, SyntaxError, NotImplementedError, ValueError):
    _aes_viper = None

_SBOX = bytes.fromhex(
    "637c777bf26b6fc53001672bfed7ab76ca82c97dfa5947f0add4a2af9ca472c0"
    "b7fd9326363ff7cc34a5e5f171d8311504c723c31896059a071280e2eb27b275"
    "09832c1a1b6e5aa0523bd6b329e32f8453d100ed20fcb15b6acbbe394a4c58cf"
    "d0efaafb434d338545f9027f503c9fa851a3408f929d38f5bcb6da2110fff3d2"
    "cd0c13ec5f974417c4a77e3d645d197360814fdc222a908846eeb814de5e0bdb"
    "e0323a0a4906245cc2d3ac629195e479e7c8376d8dd54ea96c56f4ea657aae08"
    "ba78252e1ca6b4c6e8dd741f4bbd8b8a703eb5664803f60e613557b986c11d9e"
    "e1f8981169d98e949b1e87e9ce5528df8ca1890dbfe6426841992d0fb054bb16")
_XTIME = bytes(((x << 1) ^ (0x11B if x & 0x80 else 0)) for x in range(256))
_RCON = b"\x01\x02\x04\x08\x10\x20\x40\x80\x1b\x36"
_inv = None  # the inverse S-box, made from _SBOX on the first decryption (OSCORE's CCM only encrypts)


def _inv_sbox():
    global _inv
    if _inv is None:
        inv = bytearray(256)
        for i in range(256):
            inv[_SBOX[i]] = i
        _inv = bytes(inv)
    return _inv


def _check_key(key):
    if len(key) not in (16, 24, 32):
        raise CryptoError("AES key must be 16, 24 or 32 bytes")


def _expand_key(key):
    nk = len(key) // 4
    rounds = nk + 6
    total = 16 * (rounds + 1)
    rk = bytearray(total)
    rk[0:len(key)] = key
    sbox = _SBOX
    i = len(key)
    while i < total:
        w = i // 4
        t0 = rk[i - 4]
        t1 = rk[i - 3]
        t2 = rk[i - 2]
        t3 = rk[i - 1]
        if w % nk == 0:
            t0, t1, t2, t3 = sbox[t1] ^ _RCON[w // nk - 1], sbox[t2], sbox[t3], sbox[t0]
        elif nk > 6 and w % nk == 4:
            t0, t1, t2, t3 = sbox[t0], sbox[t1], sbox[t2], sbox[t3]
        j = i - 4 * nk
        rk[i] = rk[j] ^ t0
        rk[i + 1] = rk[j + 1] ^ t1
        rk[i + 2] = rk[j + 2] ^ t2
        rk[i + 3] = rk[j + 3] ^ t3
        i += 4
    return rk, rounds


class PureAES:
    """AES in Python: the fallback where cryptolib is missing, and tested on its own everywhere."""

    def __init__(self, key):
        _check_key(key)
        self._rk, self._rounds = _expand_key(key)

    def __repr__(self):
        return "<PureAES-%d key hidden>" % ((self._rounds - 6) * 32)

    def encrypt_block(self, block):
        if len(block) != 16:
            raise CryptoError("AES block must be 16 bytes")
        out = bytearray(16)
        self.encrypt_into(block, out)
        return bytes(out)

    def decrypt_block(self, block):
        if len(block) != 16:
            raise CryptoError("AES block must be 16 bytes")
        out = bytearray(16)
        self.decrypt_into(block, out)
        return bytes(out)

    def encrypt_into(self, src, dst):
        """Encrypt the 16 bytes of src into dst (a bytearray or writable memoryview)."""
        rk = self._rk
        S = _SBOX
        X = _XTIME
        s0 = src[0] ^ rk[0]; s1 = src[1] ^ rk[1]; s2 = src[2] ^ rk[2]; s3 = src[3] ^ rk[3]
        s4 = src[4] ^ rk[4]; s5 = src[5] ^ rk[5]; s6 = src[6] ^ rk[6]; s7 = src[7] ^ rk[7]
        s8 = src[8] ^ rk[8]; s9 = src[9] ^ rk[9]; s10 = src[10] ^ rk[10]; s11 = src[11] ^ rk[11]
        s12 = src[12] ^ rk[12]; s13 = src[13] ^ rk[13]; s14 = src[14] ^ rk[14]; s15 = src[15] ^ rk[15]
        o = 16
        for _ in range(self._rounds - 1):
            a0 = S[s0]; a1 = S[s5]; a2 = S[s10]; a3 = S[s15]
            t = a0 ^ a1 ^ a2 ^ a3
            n0 = a0 ^ t ^ X[a0 ^ a1] ^ rk[o + 0]; n1 = a1 ^ t ^ X[a1 ^ a2] ^ rk[o + 1]
            n2 = a2 ^ t ^ X[a2 ^ a3] ^ rk[o + 2]; n3 = a3 ^ t ^ X[a3 ^ a0] ^ rk[o + 3]
            a0 = S[s4]; a1 = S[s9]; a2 = S[s14]; a3 = S[s3]
            t = a0 ^ a1 ^ a2 ^ a3
            n4 = a0 ^ t ^ X[a0 ^ a1] ^ rk[o + 4]; n5 = a1 ^ t ^ X[a1 ^ a2] ^ rk[o + 5]
            n6 = a2 ^ t ^ X[a2 ^ a3] ^ rk[o + 6]; n7 = a3 ^ t ^ X[a3 ^ a0] ^ rk[o + 7]
            a0 = S[s8]; a1 = S[s13]; a2 = S[s2]; a3 = S[s7]
            t = a0 ^ a1 ^ a2 ^ a3
            n8 = a0 ^ t ^ X[a0 ^ a1] ^ rk[o + 8]; n9 = a1 ^ t ^ X[a1 ^ a2] ^ rk[o + 9]
            n10 = a2 ^ t ^ X[a2 ^ a3] ^ rk[o + 10]; n11 = a3 ^ t ^ X[a3 ^ a0] ^ rk[o + 11]
            a0 = S[s12]; a1 = S[s1]; a2 = S[s6]; a3 = S[s11]
            t = a0 ^ a1 ^ a2 ^ a3
            n12 = a0 ^ t ^ X[a0 ^ a1] ^ rk[o + 12]; n13 = a1 ^ t ^ X[a1 ^ a2] ^ rk[o + 13]
            n14 = a2 ^ t ^ X[a2 ^ a3] ^ rk[o + 14]; n15 = a3 ^ t ^ X[a3 ^ a0] ^ rk[o + 15]
            s0 = n0; s1 = n1; s2 = n2; s3 = n3
            s4 = n4; s5 = n5; s6 = n6; s7 = n7
            s8 = n8; s9 = n9; s10 = n10; s11 = n11
            s12 = n12; s13 = n13; s14 = n14; s15 = n15
            o += 16
        dst[0] = S[s0] ^ rk[o + 0]
        dst[1] = S[s5] ^ rk[o + 1]
        dst[2] = S[s10] ^ rk[o + 2]
        dst[3] = S[s15] ^ rk[o + 3]
        dst[4] = S[s4] ^ rk[o + 4]
        dst[5] = S[s9] ^ rk[o + 5]
        dst[6] = S[s14] ^ rk[o + 6]
        dst[7] = S[s3] ^ rk[o + 7]
        dst[8] = S[s8] ^ rk[o + 8]
        dst[9] = S[s13] ^ rk[o + 9]
        dst[10] = S[s2] ^ rk[o + 10]
        dst[11] = S[s7] ^ rk[o + 11]
        dst[12] = S[s12] ^ rk[o + 12]
        dst[13] = S[s1] ^ rk[o + 13]
        dst[14] = S[s6] ^ rk[o + 14]
        dst[15] = S[s11] ^ rk[o + 15]

    def decrypt_into(self, src, dst):
        """Decrypt the 16 bytes of src into dst (the inverse rounds are in crypto._aes_soft_dec, loaded on the
        first decryption: CCM, GCM and CTR never decrypt a block)."""
        from crypto._aes_soft_dec import decrypt_into
        decrypt_into(self._rk, self._rounds, src, dst, _inv_sbox(), _XTIME)


class ViperAES(PureAES):
    """PureAES's key schedule with the block functions of _aes_viper (machine code, no allocation)."""

    def __init__(self, key):
        if not viper_works():
            raise CryptoError("ViperAES: no working viper emitter on this port")
        PureAES.__init__(self, key)
        rk = bytearray(241)
        rk[0:len(self._rk)] = self._rk
        rk[240] = self._rounds
        self._rk = rk

    def __repr__(self):
        return "<ViperAES-%d key hidden>" % ((self._rounds - 6) * 32)

    def encrypt_into(self, src, dst):
        _aes_viper.encrypt(self._rk, src, dst, _TABLES)

    def decrypt_into(self, src, dst):
        _aes_viper.decrypt(self._rk, src, dst, _TABLES)


def _viper_selftest():
    # FIPS-197 C.1 both ways: a half-working emitter must not be trusted with keys
    try:
        a = ViperAES(bytes(range(16)))
        ct = a.encrypt_block(bytes.fromhex("00112233445566778899aabbccddeeff"))
        return (ct == bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a")
                and a.decrypt_block(ct) == bytes.fromhex("00112233445566778899aabbccddeeff"))
    except Exception:
        return False


_TABLES = None  # S-box || inverse S-box || xtime for the viper functions, with the self-test on first use


def viper_works():
    """Whether ViperAES can be used: the emitter compiled _aes_viper and it passes FIPS-197 C.1 (checked once)."""
    global _TABLES, _aes_viper
    if _TABLES is None and _aes_viper is not None:
        _TABLES = bytes(_SBOX + _inv_sbox() + _XTIME)
        if not _viper_selftest():
            _aes_viper = None
    return _aes_viper is not None


def best(key):
    """ViperAES where the viper emitter works, else PureAES."""
    return ViperAES(key) if viper_works() else PureAES(key)
