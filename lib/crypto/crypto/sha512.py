# SHA-512 (FIPS 180-4) for Ed25519. Uses hashlib.sha512 when the port has it; the MicroPython unix port and
# the boards do not. Then new() uses the viper block function (_sha512_viper.py) where the port can compile
# it, else the pure-Python Sha512 below, which is public so it is tested on its own on both runtimes.
import array

try:
    import hashlib

    _native_sha512 = hashlib.sha512
except (ImportError, AttributeError):
    _native_sha512 = None

try:  # CPython, a port without the viper emitter, or an .mpy built for another arch cannot load it
    from crypto._sha512_viper import _compress_viper
except (ImportError, SyntaxError, NotImplementedError, ValueError):
    _compress_viper = None

_K = (
    0x428A2F98D728AE22, 0x7137449123EF65CD, 0xB5C0FBCFEC4D3B2F, 0xE9B5DBA58189DBBC, 0x3956C25BF348B538,
    0x59F111F1B605D019, 0x923F82A4AF194F9B, 0xAB1C5ED5DA6D8118, 0xD807AA98A3030242, 0x12835B0145706FBE,
    0x243185BE4EE4B28C, 0x550C7DC3D5FFB4E2, 0x72BE5D74F27B896F, 0x80DEB1FE3B1696B1, 0x9BDC06A725C71235,
    0xC19BF174CF692694, 0xE49B69C19EF14AD2, 0xEFBE4786384F25E3, 0x0FC19DC68B8CD5B5, 0x240CA1CC77AC9C65,
    0x2DE92C6F592B0275, 0x4A7484AA6EA6E483, 0x5CB0A9DCBD41FBD4, 0x76F988DA831153B5, 0x983E5152EE66DFAB,
    0xA831C66D2DB43210, 0xB00327C898FB213F, 0xBF597FC7BEEF0EE4, 0xC6E00BF33DA88FC2, 0xD5A79147930AA725,
    0x06CA6351E003826F, 0x142929670A0E6E70, 0x27B70A8546D22FFC, 0x2E1B21385C26C926, 0x4D2C6DFC5AC42AED,
    0x53380D139D95B3DF, 0x650A73548BAF63DE, 0x766A0ABB3C77B2A8, 0x81C2C92E47EDAEE6, 0x92722C851482353B,
    0xA2BFE8A14CF10364, 0xA81A664BBC423001, 0xC24B8B70D0F89791, 0xC76C51A30654BE30, 0xD192E819D6EF5218,
    0xD69906245565A910, 0xF40E35855771202A, 0x106AA07032BBD1B8, 0x19A4C116B8D2D0C8, 0x1E376C085141AB53,
    0x2748774CDF8EEB99, 0x34B0BCB5E19B48A8, 0x391C0CB3C5C95A63, 0x4ED8AA4AE3418ACB, 0x5B9CCA4F7763E373,
    0x682E6FF3D6B2B8A3, 0x748F82EE5DEFB2FC, 0x78A5636F43172F60, 0x84C87814A1F0AB72, 0x8CC702081A6439EC,
    0x90BEFFFA23631E28, 0xA4506CEBDE82BDE9, 0xBEF9A3F7B2C67915, 0xC67178F2E372532B, 0xCA273ECEEA26619C,
    0xD186B8C721C0C207, 0xEADA7DD6CDE0EB1E, 0xF57D4F7FEE6ED178, 0x06F067AA72176FBA, 0x0A637DC5A2C898A6,
    0x113F9804BEF90DAE, 0x1B710B35131C471B, 0x28DB77F523047D84, 0x32CAAB7B40C72493, 0x3C9EBE0A15C9BEBC,
    0x431D67C49C100D4C, 0x4CC5D4BECB3E42B6, 0x597F299CFC657E2A, 0x5FCB6FAB3AD6FAEC, 0x6C44198C4A475817,
)

_IV = (
    0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
    0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179,
)

_MASK = 0xFFFFFFFFFFFFFFFF


def _compress(state, block, w):
    """One 128-byte block into the 8-word state (a list, updated in place). w is a 16-entry scratch list:
    the message schedule is kept as a ring of 16 words instead of 80, and nothing grows, so the heap
    needs no contiguous block larger than 128 bytes."""
    mask = _MASK
    k = _K
    for i in range(16):
        w[i] = int.from_bytes(block[8 * i:8 * i + 8], "big")
    a, b, c, d, e, f, g, h = state
    for t in range(80):
        if t < 16:
            wt = w[t]
        else:
            x = w[(t - 15) & 15]
            s0 = ((x >> 1 | x << 63) ^ (x >> 8 | x << 56) ^ (x >> 7)) & mask
            x = w[(t - 2) & 15]
            s1 = ((x >> 19 | x << 45) ^ (x >> 61 | x << 3) ^ (x >> 6)) & mask
            wt = (w[t & 15] + s0 + w[(t - 7) & 15] + s1) & mask
            w[t & 15] = wt
        s1 = ((e >> 14 | e << 50) ^ (e >> 18 | e << 46) ^ (e >> 41 | e << 23)) & mask
        t1 = h + s1 + ((e & f) ^ (~e & g)) + k[t] + wt
        s0 = ((a >> 28 | a << 36) ^ (a >> 34 | a << 30) ^ (a >> 39 | a << 25)) & mask
        t2 = s0 + ((a & b) ^ (a & c) ^ (b & c))
        h = g
        g = f
        f = e
        e = (d + t1) & mask
        d = c
        c = b
        b = a
        a = (t1 + t2) & mask
    state[0] = (state[0] + a) & mask
    state[1] = (state[1] + b) & mask
    state[2] = (state[2] + c) & mask
    state[3] = (state[3] + d) & mask
    state[4] = (state[4] + e) & mask
    state[5] = (state[5] + f) & mask
    state[6] = (state[6] + g) & mask
    state[7] = (state[7] + h) & mask


class _Sha512Base:
    """Buffering and padding; subclasses provide the state and the block function."""

    digest_size = 64
    block_size = 128

    def __init__(self, data=b""):
        self._buf = bytearray(128)  # a partial block
        self._fill = 0
        self._length = 0
        self._init_state()
        if data:
            self.update(data)

    def update(self, data):
        mv = memoryview(data)
        n = len(mv)
        self._length += n
        pos = 0
        fill = self._fill
        if fill:
            take = min(128 - fill, n)
            self._buf[fill:fill + take] = mv[:take]
            fill += take
            pos = take
            if fill < 128:
                self._fill = fill
                return
            self._block(self._state, self._buf)
        # whole blocks straight from the caller's buffer, no copy
        while n - pos >= 128:
            self._block(self._state, mv[pos:pos + 128])
            pos += 128
        rest = n - pos
        self._buf[:rest] = mv[pos:]
        self._fill = rest

    def digest(self):
        state = self._copy_state()
        fill = self._fill
        block = bytearray(self._buf)
        block[fill] = 0x80
        for i in range(fill + 1, 128):
            block[i] = 0
        if fill >= 112:  # no room for the 16-byte length: one more block
            self._block(state, block)
            block = bytearray(128)
        block[112:] = (self._length * 8).to_bytes(16, "big")
        self._block(state, block)
        return self._state_bytes(state)


class Sha512(_Sha512Base):
    """Pure-Python SHA-512 (big ints), the hashlib interface subset we need: update(), digest()."""

    def _init_state(self):
        self._state = list(_IV)
        self._w = [0] * 16

    def _block(self, state, block):
        _compress(state, block, self._w)

    def _copy_state(self):
        return list(self._state)

    def _state_bytes(self, state):
        out = bytearray(64)
        for i in range(8):
            out[8 * i:8 * i + 8] = state[i].to_bytes(8, "big")
        return bytes(out)


class Sha512Viper(_Sha512Base):
    """The same on 32-bit halves with the viper block function (MicroPython only)."""

    def _init_state(self):
        self._state = array.array("I", _IV_HALVES)
        self._w = array.array("I", bytes(128))

    def _block(self, state, block):
        _compress_viper(state, block, self._w, _K_HALVES)

    def _copy_state(self):
        return array.array("I", self._state)

    def _state_bytes(self, state):
        out = bytearray(64)
        for i in range(16):
            out[4 * i:4 * i + 4] = state[i].to_bytes(4, "big")
        return bytes(out)


def _halves(words):
    out = []
    for v in words:
        out.append(v >> 32)
        out.append(v & 0xFFFFFFFF)
    return out


_IV_HALVES = _halves(_IV)
_K_HALVES = array.array("I", _halves(_K)) if _compress_viper is not None else None


def _pick_fast():
    """Sha512Viper if this port compiled the viper block function and it passes a known answer, else None."""
    if _native_sha512 is not None or _compress_viper is None:
        return None
    if Sha512Viper(b"abc").digest() != Sha512(b"abc").digest():
        return None
    return Sha512Viper


_fast = _pick_fast()


def new(data=b""):
    """A SHA-512 hash object: hashlib's where it exists, else the pure-Python one."""
    if _native_sha512 is not None:
        return _native_sha512(data)
    if _fast is not None:
        return _fast(data)
    return Sha512(data)


def digest(data):
    return new(data).digest()
