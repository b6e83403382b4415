# SLIP framing (RFC 1055) multiplexed as in draft-bormann-t2trg-slipmux: CoAP, diagnostic text and IP
# packets share one serial line with unframed text (print() and REPL output). Sans-IO: bytes in, events out.
#
# On the wire a frame is END <type> <escaped body> END. The first byte says what the frame is:
#   0xA9        CoAP message, followed by a 16-bit FCS (RFC 1662, "PPP" CRC) over 0xA9 + message
#   0x0A        diagnostic text (UTF-8), platform to host
#   0x45..0x4F  IPv4 packet, 0x60..0x6F IPv6 packet (the type byte is the packet's first byte)
# The draft calls CoAP frames "configuration": there is no other configuration type. ESC END aborts a
# frame; empty frames are ignored; frames with an unknown first byte or a bad FCS are dropped.
#
# Bytes outside frames are text and pass through. The draft has no "outside", so to tell text from frames
# we need one rule: a frame opens with END (the draft asks senders to put END before and after every
# frame). After a frame's closing END, only a further END or a CoAP type byte (0xA9, which cannot start
# UTF-8 text) continues framing; anything else is text again. END (0xC0) never occurs in UTF-8 text.
#
# Decoder: feed(chunk) then call next() until it returns None. Each event leaves its bytes in .data, a
# memoryview valid until the next next()/feed(): TEXT (a slice of the chunk), COAP (message without FCS),
# DIAG, PACKET (a slice of the frame buffer). The frame buffer is preallocated (max_frame bytes); an oversized
# or malformed frame is discarded up to its closing END and counted, never buffered.
#
# Viper (coap/_slip_viper.py) runs the FCS and the escaping when the firmware has the emitter (all our
# boards: xtensawin, rv32imc, armv7emsp; the unix VM's x64); otherwise, and on CPython, the pure-Python
# versions below run.
from array import array

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

END = const(0xC0)
ESC = const(0xDB)
ESC_END = const(0xDC)
ESC_ESC = const(0xDD)

T_COAP = const(0xA9)
T_DIAG = const(0x0A)

# Decoder events
TEXT = const(1)
COAP = const(2)
DIAG = const(3)
PACKET = const(4)

MTU = const(1280)  # the draft's link MTU: unescaped frame bytes, type byte (and FCS) included
FCS_INIT = const(0xFFFF)
FCS_GOOD = const(0xF0B8)  # RFC 1662: the FCS over data + its own FCS bytes

_TEXT = const(0)
_AFTER = const(1)  # just after a closing END or an abort
_START = const(2)  # after an opening END: the next byte is the frame type
_FRAME = const(3)
_FESC = const(4)  # in a frame, after ESC
_DROP = const(5)  # discarding up to the next END

_END_B = b"\xc0"
_ESC_B = b"\xdb"

# RFC 1662 FCS-16 table (reflected polynomial 0x8408), 256 little-endian uint16: a bytes constant, so a
# frozen module keeps it in flash.
_FCS_TABLE = (
    b"\x00\x00\x89\x11\x12\x23\x9b\x32\x24\x46\xad\x57\x36\x65\xbf\x74\x48\x8c\xc1\x9d\x5a\xaf\xd3\xbe\x6c\xca\xe5\xdb\x7e\xe9\xf7\xf8"
    b"\x81\x10\x08\x01\x93\x33\x1a\x22\xa5\x56\x2c\x47\xb7\x75\x3e\x64\xc9\x9c\x40\x8d\xdb\xbf\x52\xae\xed\xda\x64\xcb\xff\xf9\x76\xe8"
    b"\x02\x21\x8b\x30\x10\x02\x99\x13\x26\x67\xaf\x76\x34\x44\xbd\x55\x4a\xad\xc3\xbc\x58\x8e\xd1\x9f\x6e\xeb\xe7\xfa\x7c\xc8\xf5\xd9"
    b"\x83\x31\x0a\x20\x91\x12\x18\x03\xa7\x77\x2e\x66\xb5\x54\x3c\x45\xcb\xbd\x42\xac\xd9\x9e\x50\x8f\xef\xfb\x66\xea\xfd\xd8\x74\xc9"
    b"\x04\x42\x8d\x53\x16\x61\x9f\x70\x20\x04\xa9\x15\x32\x27\xbb\x36\x4c\xce\xc5\xdf\x5e\xed\xd7\xfc\x68\x88\xe1\x99\x7a\xab\xf3\xba"
    b"\x85\x52\x0c\x43\x97\x71\x1e\x60\xa1\x14\x28\x05\xb3\x37\x3a\x26\xcd\xde\x44\xcf\xdf\xfd\x56\xec\xe9\x98\x60\x89\xfb\xbb\x72\xaa"
    b"\x06\x63\x8f\x72\x14\x40\x9d\x51\x22\x25\xab\x34\x30\x06\xb9\x17\x4e\xef\xc7\xfe\x5c\xcc\xd5\xdd\x6a\xa9\xe3\xb8\x78\x8a\xf1\x9b"
    b"\x87\x73\x0e\x62\x95\x50\x1c\x41\xa3\x35\x2a\x24\xb1\x16\x38\x07\xcf\xff\x46\xee\xdd\xdc\x54\xcd\xeb\xb9\x62\xa8\xf9\x9a\x70\x8b"
    b"\x08\x84\x81\x95\x1a\xa7\x93\xb6\x2c\xc2\xa5\xd3\x3e\xe1\xb7\xf0\x40\x08\xc9\x19\x52\x2b\xdb\x3a\x64\x4e\xed\x5f\x76\x6d\xff\x7c"
    b"\x89\x94\x00\x85\x9b\xb7\x12\xa6\xad\xd2\x24\xc3\xbf\xf1\x36\xe0\xc1\x18\x48\x09\xd3\x3b\x5a\x2a\xe5\x5e\x6c\x4f\xf7\x7d\x7e\x6c"
    b"\x0a\xa5\x83\xb4\x18\x86\x91\x97\x2e\xe3\xa7\xf2\x3c\xc0\xb5\xd1\x42\x29\xcb\x38\x50\x0a\xd9\x1b\x66\x6f\xef\x7e\x74\x4c\xfd\x5d"
    b"\x8b\xb5\x02\xa4\x99\x96\x10\x87\xaf\xf3\x26\xe2\xbd\xd0\x34\xc1\xc3\x39\x4a\x28\xd1\x1a\x58\x0b\xe7\x7f\x6e\x6e\xf5\x5c\x7c\x4d"
    b"\x0c\xc6\x85\xd7\x1e\xe5\x97\xf4\x28\x80\xa1\x91\x3a\xa3\xb3\xb2\x44\x4a\xcd\x5b\x56\x69\xdf\x78\x60\x0c\xe9\x1d\x72\x2f\xfb\x3e"
    b"\x8d\xd6\x04\xc7\x9f\xf5\x16\xe4\xa9\x90\x20\x81\xbb\xb3\x32\xa2\xc5\x5a\x4c\x4b\xd7\x79\x5e\x68\xe1\x1c\x68\x0d\xf3\x3f\x7a\x2e"
    b"\x0e\xe7\x87\xf6\x1c\xc4\x95\xd5\x2a\xa1\xa3\xb0\x38\x82\xb1\x93\x46\x6b\xcf\x7a\x54\x48\xdd\x59\x62\x2d\xeb\x3c\x70\x0e\xf9\x1f"
    b"\x8f\xf7\x06\xe6\x9d\xd4\x14\xc5\xab\xb1\x22\xa0\xb9\x92\x30\x83\xc7\x7b\x4e\x6a\xd5\x58\x5c\x49\xe3\x3d\x6a\x2c\xf1\x1e\x78\x0f"
)


def _fcs_py(buf, n, crc):
    t = _FCS_TABLE
    for i in range(n):
        j = ((crc ^ buf[i]) & 0xFF) << 1
        crc = (crc >> 8) ^ t[j] ^ (t[j + 1] << 8)
    return crc


def _escape_py(src, n, dst, k):
    # bytes.replace runs in C on both runtimes; only the no-viper path pays its two copies.
    e = bytes(src[:n]).replace(_ESC_B, b"\xdb\xdd").replace(_END_B, b"\xdb\xdc")
    dst[k:k + len(e)] = e
    return k + len(e)


def _unescape_py(src, i, e, dst, k, lim, st):
    # Copy src[i:e] (no END in it) into dst[k:lim], undoing escapes; same contract as
    # _slip_viper.unescape: returns 0 (all copied), 1 (ends in ESC), 2 (bad escape), 3 (dst full), and
    # leaves the new i, k in st[0], st[1]. Runs between escapes are copied whole.
    r = 0
    while i < e:
        s = src.find(_ESC_B, i, e)
        stop = e if s < 0 else s
        m = stop - i
        if m:
            if k + m > lim:
                r = 3
                break
            dst[k:k + m] = memoryview(src)[i:stop]
            k += m
        i = stop
        if s < 0:
            break
        if s + 1 >= e:
            i = e
            r = 1
            break
        b = src[s + 1]
        i = s + 2
        if b == ESC_END:
            b = END
        elif b == ESC_ESC:
            b = ESC
        else:
            r = 2
            break
        if k >= lim:
            r = 3
            break
        dst[k] = b
        k += 1
    st[0] = i
    st[1] = k
    return r


_fcs = _fcs_py
_escape = _escape_py
_unescape = _unescape_py
try:
    import coap._slip_viper as _slip_viper

    def _fcs_viper(buf, n, crc):
        return _slip_viper.fcs(buf, n, crc, _FCS_TABLE)

    _escape_viper = _slip_viper.escape
    _unescape_viper = _slip_viper.unescape
    _t = bytearray(6)
    _st = array("i", (0, 0))
    if _fcs_viper(b"123456789", 9, 0xFFFF) == 0x6F91 and _escape_viper(b"\xc0a\xdb", 3, _t, 0) == 5 \
            and _t == b"\xdb\xdca\xdb\xdd\x00" and _unescape_viper(_t, 0, 5, _t, 1, 6, _st) == 0 \
            and _t == b"\xdb\xc0a\xdb\xdd\x00" and _st[0] == 5 and _st[1] == 4:
        _fcs = _fcs_viper
        _escape = _escape_viper
        _unescape = _unescape_viper
    del _t, _st
except Exception:  # noqa: BLE001 -- CPython, no viper emitter, or a .mpy for another CPU (ValueError):
    pass            # the accelerator is optional, the Python versions above always work


def fcs16(data, n=None, crc=FCS_INIT):
    """RFC 1662 FCS-16 register after `data` (no final complement): fcs16(b) ^ 0xFFFF is the FCS to send."""
    if n is None:
        n = len(data)
    elif n > len(data):
        raise ValueError("n > len(data)")
    return _fcs(data, n, crc)


_FCS_COAP = _fcs_py(bytes((T_COAP,)), 1, FCS_INIT)  # register after the CoAP type byte


class FrameError(ValueError):
    """A frame cannot be built (type byte, size)."""


def max_encoded(n):
    """Worst-case bytes on the wire for an n-byte body: END, type, 2n escaped body, 4 escaped FCS, END."""
    return 2 * n + 7


def encode_into(out, ftype, data, n=None):
    """Write one frame for `data[:n]` into the bytearray `out` (at least max_encoded(n) bytes); returns its
    length. ftype is T_COAP (adds the FCS), T_DIAG, or an IP packet's first byte (then data is the packet)."""
    if n is None:
        n = len(data)
    elif n > len(data):
        raise FrameError("n > len(data)")
    if len(out) < max_encoded(n):
        raise FrameError("output buffer too small")
    out[0] = END
    k = 1
    if ftype == T_COAP or ftype == T_DIAG:
        out[1] = ftype
        k = 2
    elif not (0x45 <= ftype <= 0x4F or 0x60 <= ftype <= 0x6F):
        raise FrameError("unknown frame type 0x%02x" % ftype)
    elif n == 0 or data[0] != ftype:
        raise FrameError("a packet frame's type is the packet's first byte")
    k = _escape(data, n, out, k)
    if ftype == T_COAP:
        crc = _fcs(data, n, _FCS_COAP) ^ 0xFFFF
        for b in (crc & 0xFF, crc >> 8):
            if b == END or b == ESC:
                out[k] = ESC
                out[k + 1] = ESC_END if b == END else ESC_ESC
                k += 2
            else:
                out[k] = b
                k += 1
    out[k] = END
    return k + 1


def encode(ftype, data):
    """One frame as bytes (allocates; devices use encode_into with a preallocated buffer)."""
    out = bytearray(max_encoded(len(data)))
    return bytes(memoryview(out)[:encode_into(out, ftype, data)])


def _is_packet(b):
    return 0x45 <= b <= 0x4F or 0x60 <= b <= 0x6F


class Decoder:
    """Incremental slipmux decoder. max_frame bounds a frame's unescaped size, type byte and FCS included
    (the draft's MTU, 1280, by default); the largest CoAP message is max_frame - 3."""

    def __init__(self, max_frame=MTU):
        if max_frame < 4:
            raise ValueError("max_frame < 4")
        self.max_frame = max_frame
        self._buf = bytearray(max_frame)
        self._mv = memoryview(self._buf)
        self._st = array("i", (0, 0))  # (i, k) out of _unescape
        self.data = None
        # Counters: frames delivered, and each reason a frame was dropped.
        self.frames = 0
        self.oversize = 0
        self.bad_escape = 0
        self.bad_fcs = 0
        self.unknown = 0
        self.aborted = 0
        self.reset()

    def reset(self):
        """Forget any partial frame and input (e.g. after reopening the line)."""
        self._in = b""
        self._inmv = None
        self._i = self._n = 0
        self._e = -1  # cached position of the next END in the chunk
        self._state = _TEXT
        self._type = 0
        self._k = 0
        self._lim = 0

    @property
    def errors(self):
        return self.oversize + self.bad_escape + self.bad_fcs + self.unknown

    def pending(self):
        """Unconsumed bytes of the last chunk."""
        return self._n - self._i

    def feed(self, data, n=None):
        """Give the decoder the next chunk (bytes or bytearray; only data[:n] if n is given). The decoder keeps a
        reference until next() has returned None, so a reused read buffer must not be refilled before then."""
        if self._i < self._n:
            raise ValueError("feed() before the previous chunk was consumed")
        if isinstance(data, memoryview):
            data = bytes(data[:n]) if n is not None else bytes(data)
        if n is None:
            n = len(data)
        elif n > len(data) or n < 0:
            raise ValueError("bad n")
        self._in = data
        self._inmv = memoryview(data)
        self._i = 0
        self._n = n
        self._e = -1

    def _find_end(self, i):
        e = self._e
        if e < i:
            e = self._in.find(_END_B, i, self._n)
            if e < 0:
                e = self._n
            self._e = e
        return e

    def next(self):
        """The next event (TEXT, COAP, DIAG, PACKET; its bytes in .data) or None when the chunk is consumed."""
        data = self._in
        n = self._n
        i = self._i
        ev = None
        while i < n and ev is None:
            st = self._state
            if st == _FRAME:
                e = self._find_end(i)
                r = _unescape(data, i, e, self._buf, self._k, self._lim, self._st)
                i = self._st[0]
                self._k = self._st[1]
                if r == 0:
                    if e < n:
                        i = e + 1
                        self._state = _AFTER
                        ev = self._finish()
                elif r == 1:
                    self._state = _FESC  # the escaped byte is data[e] (END: an abort) or in the next chunk
                elif r == 2:
                    self.bad_escape += 1
                    self._state = _DROP
                else:
                    self.oversize += 1
                    self._state = _DROP
            elif st == _TEXT:
                e = self._find_end(i)
                if e > i:
                    self.data = self._inmv[i:e]
                    ev = TEXT
                if e < n:
                    self._state = _START
                    e += 1
                i = e
            elif st == _AFTER:
                b = data[i]
                if b == END:
                    i += 1
                    self._state = _START
                elif b == T_COAP:
                    self._state = _START
                else:
                    self._state = _TEXT
            elif st == _START:
                b = data[i]
                i += 1
                if b == END:
                    continue  # empty frame
                self._type = b
                if b == T_COAP or b == T_DIAG:
                    self._k = 0
                    self._lim = self.max_frame - 1
                    self._state = _FRAME
                elif _is_packet(b):
                    self._buf[0] = b
                    self._k = 1
                    self._lim = self.max_frame
                    self._state = _FRAME
                else:
                    self.unknown += 1
                    self._state = _DROP
            elif st == _FESC:
                b = data[i]
                i += 1
                if b == ESC_END:
                    b = END
                elif b == ESC_ESC:
                    b = ESC
                elif b == END:
                    self.aborted += 1  # ESC END: the sender abandoned the frame
                    self._state = _AFTER
                    continue
                else:
                    self.bad_escape += 1
                    self._state = _DROP
                    continue
                k = self._k
                if k >= self._lim:
                    self.oversize += 1
                    self._state = _DROP
                    continue
                self._buf[k] = b
                self._k = k + 1
                self._state = _FRAME
            else:  # _DROP
                e = self._find_end(i)
                if e < n:
                    self._state = _AFTER
                    e += 1
                i = e
        self._i = i
        if i >= n:
            self._in = b""  # drop the reference to the caller's buffer (data already points into it if TEXT)
            self._inmv = None
        return ev

    def _finish(self):
        t = self._type
        k = self._k
        if t == T_COAP:
            if k < 2 or _fcs(self._buf, k, _FCS_COAP) != FCS_GOOD:
                self.bad_fcs += 1
                return None
            self.frames += 1
            self.data = self._mv[:k - 2]
            return COAP
        self.frames += 1
        self.data = self._mv[:k]
        return DIAG if t == T_DIAG else PACKET
