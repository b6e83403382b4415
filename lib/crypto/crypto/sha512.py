# SHA-512 (FIPS 180-4) for Ed25519. Uses hashlib.sha512 when the port has it; the MicroPython unix port and
# the boards do not. Then new() uses the viper block function (_sha512_viper.py) where the port can compile
# it (checked against a known answer on first use), else the pure-Python Sha512 of crypto._sha512_pure, which
# is public as crypto.sha512.Sha512 so it is tested on its own on both runtimes. The constants are kept as
# bytes; the word arrays each version needs are made on first use.
import array

try:
    import hashlib

    _native_sha512 = hashlib.sha512
except (ImportError, AttributeError):
    _native_sha512 = None

_compress_viper = None  # the viper block function, loaded by fast()

_K_BYTES = (
    b"\x42\x8a\x2f\x98\xd7\x28\xae\x22\x71\x37\x44\x91\x23\xef\x65\xcd\xb5\xc0\xfb\xcf\xec\x4d\x3b\x2f\xe9\xb5\xdb\xa5\x81\x89\xdb\xbc"
    b"\x39\x56\xc2\x5b\xf3\x48\xb5\x38\x59\xf1\x11\xf1\xb6\x05\xd0\x19\x92\x3f\x82\xa4\xaf\x19\x4f\x9b\xab\x1c\x5e\xd5\xda\x6d\x81\x18"
    b"\xd8\x07\xaa\x98\xa3\x03\x02\x42\x12\x83\x5b\x01\x45\x70\x6f\xbe\x24\x31\x85\xbe\x4e\xe4\xb2\x8c\x55\x0c\x7d\xc3\xd5\xff\xb4\xe2"
    b"\x72\xbe\x5d\x74\xf2\x7b\x89\x6f\x80\xde\xb1\xfe\x3b\x16\x96\xb1\x9b\xdc\x06\xa7\x25\xc7\x12\x35\xc1\x9b\xf1\x74\xcf\x69\x26\x94"
    b"\xe4\x9b\x69\xc1\x9e\xf1\x4a\xd2\xef\xbe\x47\x86\x38\x4f\x25\xe3\x0f\xc1\x9d\xc6\x8b\x8c\xd5\xb5\x24\x0c\xa1\xcc\x77\xac\x9c\x65"
    b"\x2d\xe9\x2c\x6f\x59\x2b\x02\x75\x4a\x74\x84\xaa\x6e\xa6\xe4\x83\x5c\xb0\xa9\xdc\xbd\x41\xfb\xd4\x76\xf9\x88\xda\x83\x11\x53\xb5"
    b"\x98\x3e\x51\x52\xee\x66\xdf\xab\xa8\x31\xc6\x6d\x2d\xb4\x32\x10\xb0\x03\x27\xc8\x98\xfb\x21\x3f\xbf\x59\x7f\xc7\xbe\xef\x0e\xe4"
    b"\xc6\xe0\x0b\xf3\x3d\xa8\x8f\xc2\xd5\xa7\x91\x47\x93\x0a\xa7\x25\x06\xca\x63\x51\xe0\x03\x82\x6f\x14\x29\x29\x67\x0a\x0e\x6e\x70"
    b"\x27\xb7\x0a\x85\x46\xd2\x2f\xfc\x2e\x1b\x21\x38\x5c\x26\xc9\x26\x4d\x2c\x6d\xfc\x5a\xc4\x2a\xed\x53\x38\x0d\x13\x9d\x95\xb3\xdf"
    b"\x65\x0a\x73\x54\x8b\xaf\x63\xde\x76\x6a\x0a\xbb\x3c\x77\xb2\xa8\x81\xc2\xc9\x2e\x47\xed\xae\xe6\x92\x72\x2c\x85\x14\x82\x35\x3b"
    b"\xa2\xbf\xe8\xa1\x4c\xf1\x03\x64\xa8\x1a\x66\x4b\xbc\x42\x30\x01\xc2\x4b\x8b\x70\xd0\xf8\x97\x91\xc7\x6c\x51\xa3\x06\x54\xbe\x30"
    b"\xd1\x92\xe8\x19\xd6\xef\x52\x18\xd6\x99\x06\x24\x55\x65\xa9\x10\xf4\x0e\x35\x85\x57\x71\x20\x2a\x10\x6a\xa0\x70\x32\xbb\xd1\xb8"
    b"\x19\xa4\xc1\x16\xb8\xd2\xd0\xc8\x1e\x37\x6c\x08\x51\x41\xab\x53\x27\x48\x77\x4c\xdf\x8e\xeb\x99\x34\xb0\xbc\xb5\xe1\x9b\x48\xa8"
    b"\x39\x1c\x0c\xb3\xc5\xc9\x5a\x63\x4e\xd8\xaa\x4a\xe3\x41\x8a\xcb\x5b\x9c\xca\x4f\x77\x63\xe3\x73\x68\x2e\x6f\xf3\xd6\xb2\xb8\xa3"
    b"\x74\x8f\x82\xee\x5d\xef\xb2\xfc\x78\xa5\x63\x6f\x43\x17\x2f\x60\x84\xc8\x78\x14\xa1\xf0\xab\x72\x8c\xc7\x02\x08\x1a\x64\x39\xec"
    b"\x90\xbe\xff\xfa\x23\x63\x1e\x28\xa4\x50\x6c\xeb\xde\x82\xbd\xe9\xbe\xf9\xa3\xf7\xb2\xc6\x79\x15\xc6\x71\x78\xf2\xe3\x72\x53\x2b"
    b"\xca\x27\x3e\xce\xea\x26\x61\x9c\xd1\x86\xb8\xc7\x21\xc0\xc2\x07\xea\xda\x7d\xd6\xcd\xe0\xeb\x1e\xf5\x7d\x4f\x7f\xee\x6e\xd1\x78"
    b"\x06\xf0\x67\xaa\x72\x17\x6f\xba\x0a\x63\x7d\xc5\xa2\xc8\x98\xa6\x11\x3f\x98\x04\xbe\xf9\x0d\xae\x1b\x71\x0b\x35\x13\x1c\x47\x1b"
    b"\x28\xdb\x77\xf5\x23\x04\x7d\x84\x32\xca\xab\x7b\x40\xc7\x24\x93\x3c\x9e\xbe\x0a\x15\xc9\xbe\xbc\x43\x1d\x67\xc4\x9c\x10\x0d\x4c"
    b"\x4c\xc5\xd4\xbe\xcb\x3e\x42\xb6\x59\x7f\x29\x9c\xfc\x65\x7e\x2a\x5f\xcb\x6f\xab\x3a\xd6\xfa\xec\x6c\x44\x19\x8c\x4a\x47\x58\x17"
)

_IV_BYTES = (
    b"\x6a\x09\xe6\x67\xf3\xbc\xc9\x08\xbb\x67\xae\x85\x84\xca\xa7\x3b\x3c\x6e\xf3\x72\xfe\x94\xf8\x2b\xa5\x4f\xf5\x3a\x5f\x1d\x36\xf1"
    b"\x51\x0e\x52\x7f\xad\xe6\x82\xd1\x9b\x05\x68\x8c\x2b\x3e\x6c\x1f\x1f\x83\xd9\xab\xfb\x41\xbd\x6b\x5b\xe0\xcd\x19\x13\x7e\x21\x79"
)


def words(which):
    """The round constants ("K") or the initial hash value ("IV") as a list of 64-bit ints."""
    b = _K_BYTES if which == "K" else _IV_BYTES
    return [int.from_bytes(b[i:i + 8], "big") for i in range(0, len(b), 8)]


def _halves(b):
    return array.array("I", [int.from_bytes(b[i:i + 4], "big") for i in range(0, len(b), 4)])


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
    global _fast, _compress_viper
    if _fast is False:
        _fast = None
        if _native_sha512 is None:
            try:  # CPython, a port without the viper emitter, or an .mpy built for another arch cannot load it
                from crypto._sha512_viper import _compress_viper
            except (ImportError, SyntaxError, NotImplementedError, ValueError):
                return None
            if Sha512Viper(b"abc").digest() == _ABC:
                _fast = Sha512Viper
    return _fast


_ABC = (b"\xdd\xaf\x35\xa1\x93\x61\x7a\xba\xcc\x41\x73\x49\xae\x20\x41\x31\x12\xe6\xfa\x4e\x89\xa9\x7e\xa2"
        b"\x0a\x9e\xee\xe6\x4b\x55\xd3\x9a\x21\x92\x99\x2a\x27\x4f\xc1\xa8\x36\xba\x3c\x23\xa3\xfe\xeb\xbd"
        b"\x45\x4d\x44\x23\x64\x3c\xe8\x0e\x2a\x9a\xc9\x4f\xa5\x4c\xa4\x9f")  # SHA-512("abc"), FIPS 180-2


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
