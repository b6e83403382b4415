# Viper versions of slip.py's two byte loops (FCS-16 and SLIP escaping). Kept in its own module: a port or
# an mpy-cross run without a native emitter fails to compile only this file, and slip.py then uses its
# pure-Python versions. slip.py checks these against known answers before using them.
import micropython


@micropython.viper
def fcs(buf: ptr8, n: int, crc: int, table: ptr16) -> int:
    # RFC 1662 FCS-16 register update over buf[:n]; table: 256 little-endian uint16 (slip._FCS_TABLE).
    i = 0
    while i < n:
        crc = (crc >> 8) ^ table[(crc ^ buf[i]) & 0xFF]
        i += 1
    return crc


@micropython.viper
def escape(src: ptr8, n: int, dst: ptr8, k: int) -> int:
    # SLIP-escape src[:n] into dst from offset k; returns the new offset. The caller has checked that dst
    # holds k + 2 * n bytes.
    i = 0
    while i < n:
        b = src[i]
        if b == 0xC0:
            dst[k] = 0xDB
            dst[k + 1] = 0xDC
            k += 2
        elif b == 0xDB:
            dst[k] = 0xDB
            dst[k + 1] = 0xDD
            k += 2
        else:
            dst[k] = b
            k += 1
        i += 1
    return k
