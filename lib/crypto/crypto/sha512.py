# SHA-512 (FIPS 180-4) for Ed25519. Uses hashlib.sha512 when the port has it; the MicroPython unix port and
# the boards do not. Then new() uses the viper block function (_sha512_viper.py) where the port can compile
# it (checked against a known answer on first use), else the pure-Python Sha512 of crypto._sha512_pure, which
# is public as crypto.sha512.Sha512 so it is tested on its own on both runtimes. The constants are kept as
# bytes (in crypto._sha512_once, with the one-shot digest a verification uses); the word arrays each version
# needs are made on first use.
import array

from crypto._sha512_once import ABC as _ABC, IV as _IV_BYTES, K as _K_BYTES, halves as _halves

try:
    import hashlib

    _native_sha512 = hashlib.sha512
except (ImportError, AttributeError):
    _native_sha512 = None

try:  # CPython, a port without the viper emitter, or an .mpy built for another arch cannot load it
    from crypto._sha512_viper import _compress_viper
except (ImportError, SyntaxError, NotImplementedError, ValueError):
    _compress_viper = None


def words(which):
    """The round constants ("K") or the initial hash value ("IV") as a list of 64-bit ints."""
    b = _K_BYTES if which == "K" else _IV_BYTES
    return [int.from_bytes(b[i:i + 8], "big") for i in range(0, len(b), 8)]


_K_HALVES = None


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


class Sha512Viper(_Sha512Base):
    """The same on 32-bit halves with the viper block function (MicroPython only)."""

    def _init_state(self):
        global _K_HALVES
        if _K_HALVES is None:
            _K_HALVES = _halves(_K_BYTES)
        self._state = _halves(_IV_BYTES)
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


def __getattr__(name):
    if name == "Sha512":
        from crypto._sha512_pure import Sha512
        return Sha512
    raise AttributeError(name)


_fast = False  # not checked yet


def fast():
    """Sha512Viper if this port compiled the viper block function and it passes a known answer, else None."""
    global _fast
    if _fast is False:
        _fast = None
        if _native_sha512 is None and _compress_viper is not None:
            if Sha512Viper(b"abc").digest() == _ABC:
                _fast = Sha512Viper
    return _fast


def new(data=b""):
    """A SHA-512 hash object: hashlib's where it exists, else the viper one, else the pure-Python one."""
    if _native_sha512 is not None:
        return _native_sha512(data)
    f = fast()
    if f is not None:
        return f(data)
    from crypto._sha512_pure import Sha512
    return Sha512(data)


def digest(data):
    return new(data).digest()
