# A QR code (ISO/IEC 18004) of the OOB URL for the device's console, made on the device: byte mode, error
# correction level L, versions 1-6 (up to 134 bytes, enough for RFC 9140's OOB URL behind a short ServerURL), one
# fixed mask (any of the eight is valid for a reader). Memory is bounded: one bytearray of side*side modules
# (at most 41 x 41) and the codewords (at most 172 bytes). Loaded only to show an OOB message.
#
#   for line in qr.text("https://noob.example/oob?P=...&N=...&H=..."):   # one line at a time
#       print(line)

# (data codewords, EC codewords per block, blocks) for versions 1-6 at level L
_L = ((19, 7, 1), (34, 10, 1), (55, 15, 1), (80, 20, 1), (108, 26, 1), (136, 18, 2))
_MASK = 0  # (row + col) % 2 == 0


def _gf_tables():
    exp = bytearray(512)
    log = bytearray(256)
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= 0x11D
    for i in range(255, 512):
        exp[i] = exp[i - 255]
    return exp, log


def _ec(data, n, exp, log):
    """Reed-Solomon EC codewords (n of them) for data."""
    gen = bytearray(n + 1)  # generator polynomial, highest degree first
    gen[0] = 1
    for i in range(n):
        # multiply by (x - a^i)
        for j in range(i + 1, 0, -1):
            g = gen[j - 1]
            gen[j] ^= exp[log[g] + i] if g else 0
    rem = bytearray(n)
    for d in data:
        f = d ^ rem[0]
        rem[:-1] = rem[1:]
        rem[-1] = 0
        if f:
            lf = log[f]
            for j in range(n):
                g = gen[j + 1]
                if g:
                    rem[j] ^= exp[lf + log[g]]
    return rem


def _codewords(data):
    n = len(data)
    for v in range(6):
        dc, ecn, blocks = _L[v]
        if 2 + n <= dc:  # 4-bit mode + 8-bit count + data + 4-bit terminator fit in 2 + n bytes
            break
    else:
        raise ValueError("too long for a version 1-6 QR code")
    bits = bytearray(dc)
    pos = [0]

    def put(value, n):
        for i in range(n - 1, -1, -1):
            if value >> i & 1:
                bits[pos[0] >> 3] |= 0x80 >> (pos[0] & 7)
            pos[0] += 1

    put(4, 4)  # byte mode
    put(n, 8)
    for b in data:
        put(b, 8)
    used = (pos[0] + 4 + 7) >> 3  # the terminator, then up to the byte boundary
    for i in range(used, dc):
        bits[i] = 0xEC if (i - used) % 2 == 0 else 0x11
    exp, log = _gf_tables()
    size = dc // blocks
    data_blocks = [bits[b * size:(b + 1) * size] for b in range(blocks)]
    ec_blocks = [_ec(blk, ecn, exp, log) for blk in data_blocks]
    out = bytearray()
    for i in range(size):  # interleaved (all blocks have the same length at these versions)
        for blk in data_blocks:
            out.append(blk[i])
    for i in range(ecn):
        for blk in ec_blocks:
            out.append(blk[i])
    return v + 1, out


def _format_bits():
    d = (1 << 3) | _MASK  # level L is 01
    r = d
    for _ in range(10):
        r = (r << 1) ^ ((r >> 9) * 0x537)
    return ((d << 10) | r) ^ 0x5412


def matrix(text):
    """(side, modules): modules[r * side + c] is 1 for dark, row by row."""
    data = text.encode() if type(text) is str else bytes(text)
    version, cw = _codewords(data)
    side = 17 + 4 * version
    m = bytearray(side * side)  # 0/1 module, | 2 when it is a function module
    fn = 2

    def put(r, c, dark):
        m[r * side + c] = fn | (1 if dark else 0)

    for (r0, c0) in ((0, 0), (0, side - 7), (side - 7, 0)):
        for r in range(-1, 8):
            for c in range(-1, 8):
                rr, cc = r0 + r, c0 + c
                if 0 <= rr < side and 0 <= cc < side:
                    ring = max(abs(r - 3), abs(c - 3))
                    put(rr, cc, ring != 2 and ring != 4)
    for i in range(8, side - 8):
        put(6, i, i % 2 == 0)
        put(i, 6, i % 2 == 0)
    if version > 1:
        a = side - 7
        for r in range(-2, 3):
            for c in range(-2, 3):
                put(a + r, a + c, max(abs(r), abs(c)) != 1)
    f = _format_bits()
    for i in range(15):
        bit = (f >> i) & 1
        if i < 6:  # the copy around the top-left finder
            put(i, 8, bit)
        elif i < 8:
            put(i + 1, 8, bit)
        elif i == 8:
            put(8, 7, bit)
        else:
            put(8, 14 - i, bit)
        if i < 8:  # the copy split between the other two finders
            put(8, side - 1 - i, bit)
        else:
            put(side - 15 + i, 8, bit)
    put(side - 8, 8, 1)  # the dark module
    # data, in two-column zigzags from the bottom right, skipping the timing column
    bit_i = 0
    total = len(cw) * 8
    right = side - 1
    while right >= 1:
        if right == 6:
            right = 5
        upward = ((right + 1) & 2) == 0
        for k in range(side):
            r = side - 1 - k if upward else k
            for j in range(2):  # (a tuple here would be allocated for every row)
                cc = right - j
                idx = r * side + cc
                if m[idx] & fn:
                    continue
                dark = bit_i < total and (cw[bit_i >> 3] >> (7 - (bit_i & 7))) & 1
                bit_i += 1
                if (r + cc) % 2 == 0:  # mask 0
                    dark = not dark
                m[idx] = 1 if dark else 0
        right -= 2
    for i in range(len(m)):
        m[i] &= 1
    return side, m


def text(url, quiet=2):
    """The QR code as lines of text, made one at a time (a generator): two module rows per line in Unicode half
    blocks, light modules drawn (a full block is two light modules), so it reads on a dark terminal."""
    side, m = matrix(url)
    n = side + 2 * quiet
    row = bytearray(3 * n)  # one line's UTF-8, reused
    blocks = (b" ", "\u2584".encode(), "\u2580".encode(), "\u2588".encode())  # index: top light * 2 + bottom
    for r in range(0, n, 2):
        w = 0
        y0 = r - quiet
        for c in range(n):
            x = c - quiet
            inside = 0 <= x < side
            k = 0
            if not (inside and 0 <= y0 < side and m[y0 * side + x]):
                k = 2
            if r + 1 < n and not (inside and 0 <= y0 + 1 < side and m[(y0 + 1) * side + x]):
                k |= 1
            b = blocks[k]
            for i in range(len(b)):  # byte by byte: a slice assignment would allocate a slice object
                row[w] = b[i]
                w += 1
        yield str(memoryview(row)[:w], "utf-8")
