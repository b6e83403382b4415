# Pure-Python SHA-512 (FIPS 180-4) on big ints: the fallback where the port has neither hashlib.sha512 nor the
# viper emitter, and the reference the viper version is checked against. crypto.sha512 imports it only then
# (crypto.sha512.Sha512 loads it too). Use crypto.sha512, not this module.
from crypto.sha512 import _Sha512Base, words

_MASK = 0xFFFFFFFFFFFFFFFF
_K = None  # the 80 round constants as ints, made on first use


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


class Sha512(_Sha512Base):
    """Pure-Python SHA-512 (big ints), the hashlib interface subset we need: update(), digest()."""

    def _init_state(self):
        global _K
        if _K is None:
            _K = words("K")
        self._state = words("IV")
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
