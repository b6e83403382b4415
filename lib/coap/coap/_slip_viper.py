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


@micropython.viper
def unescape(src: ptr8, i: int, e: int, dst: ptr8, k: int, lim: int, st: ptr32) -> int:
    # Copy src[i:e] (a stretch with no END in it) into dst[k:lim], undoing escapes. Returns 0 when all is
    # copied, 1 when the stretch ends in an ESC (its partner is the next byte, END or in the next chunk),
    # 2 after a bad escape, 3 when dst is full (the frame is then dropped: i, k and dst do not matter).
    # st[0], st[1] receive the new i and k.
    r = 0
    while i < e:
        b = src[i]
        if b == 0xDB:
            if i + 1 >= e:
                i = e
                r = 1
                break
            b = src[i + 1]
            if b == 0xDC:
                b = 0xC0
            elif b == 0xDD:
                b = 0xDB
            else:
                i += 2
                r = 2
                break
            if k >= lim:
                r = 3
                break
            dst[k] = b
            k += 1
            i += 2
        else:
            if k >= lim:
                r = 3
                break
            dst[k] = b
            k += 1
            i += 1
    st[0] = i
    st[1] = k
    return r
