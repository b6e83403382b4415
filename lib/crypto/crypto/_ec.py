# Shared helpers for the elliptic-curve modules (x25519, p256, ed25519).


def wnaf(k, width, length):
    """Width-`width` NAF of the non-negative int k as a bytearray of `length` signed digits (two's complement
    bytes, least significant first): every nonzero digit is odd and below 2^(width-1) in magnitude, and at most
    one of any `width` consecutive digits is nonzero. A bytearray costs 1 byte per digit, a list 8 on the VM."""
    out = bytearray(length)
    full = 1 << width
    mask = full - 1
    half = full >> 1
    i = 0
    while k:
        if k & 1:
            d = k & mask
            if d >= half:
                d -= full
            k -= d
            out[i] = d & 0xFF
            # the next width-1 digits are zero
            k >>= width
            i += width
        else:
            k >>= 1
            i += 1
    return out
