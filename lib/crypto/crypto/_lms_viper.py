# The LM-OTS part of crypto.lms in viper: checksum, digit extraction, chain bookkeeping and the 32-byte copies
# run as machine code, so the time goes into hashlib's SHA-256 calls. Kept in its own module: a port without
# the viper emitter fails to compile only this file and lms.py keeps its Python walk (it also checks this one
# against the Python walk before use).
import micropython


@micropython.viper
def ots_walk(qp: ptr8, sig, y_off: int, block, last, work, wv, kc, sha) -> int:
    # qp: Q (32 bytes), 2 bytes for Cksm(Q) (filled in here), w, p >> 8, p & 0xFF, ls.
    # sig: the signature; y[i] is at y_off + 32 i. block: a multiple of 32 bytes of scratch; the chains of
    # each block of y values are advanced in place, then the block goes into kc (the Kc hash) in one update;
    # last: a memoryview of block for the final, shorter block (slicing here would pass a raw machine int).
    # work: a pad byte, then I || u32str(q) || u16str(i) || u8str(j) || tmp, so tmp is word-aligned at 24;
    # wv = memoryview(work)[1:] is what gets hashed.
    s = ptr8(sig)
    z = ptr8(block)
    wk = ptr8(work)
    tw = ptr32(uint(wk) + 24)
    w = int(qp[34])
    p = (int(qp[35]) << 8) | int(qp[36])
    top = (1 << w) - 1
    # Cksm(Q): the sum of (2^w - 1 - digit) over the digits of Q, shifted left by ls
    total = 0
    bit = 0
    while bit < 256:
        total += top - ((int(qp[bit >> 3]) >> (8 - w - (bit & 7))) & top)
        bit += w
    total <<= int(qp[37])
    qp[32] = (total >> 8) & 0xFF
    qp[33] = total & 0xFF
    per_block = int(len(block)) >> 5
    # word copies where the buffers allow (bytearrays are word-aligned; y values are at 4-byte multiples)
    aligned = ((int(uint(s)) + y_off) & 3) == 0 and (int(uint(z)) & 3) == 0 and (int(uint(wk)) & 3) == 0
    calls = 0
    i = 0
    while i < p:
        n = p - i
        if n > per_block:
            n = per_block
        src = y_off + (i << 5)
        nb = n << 5
        k = 0
        if aligned:
            z32 = ptr32(block)
            s32 = ptr32(uint(s) + uint(src))
            while k < (nb >> 2):
                z32[k] = s32[k]
                k += 1
        else:
            while k < nb:
                z[k] = s[src + k]
                k += 1
        end = i + n
        zo = 0
        while i < end:
            bit = i * w
            a = (int(qp[bit >> 3]) >> (8 - w - (bit & 7))) & top
            if a != top:
                wk[21] = i >> 8
                wk[22] = i & 0xFF
                if aligned:
                    zw = ptr32(uint(z) + uint(zo))
                    k = 0
                    while k < 8:
                        tw[k] = zw[k]
                        k += 1
                else:
                    k = 0
                    while k < 32:
                        wk[24 + k] = z[zo + k]
                        k += 1
                j = a
                while j < top:
                    wk[23] = j
                    dig = sha(wv).digest()
                    d = ptr8(dig)
                    j += 1
                    # the chain's last digest goes straight to its slot in the block
                    if j < top:
                        dst = uint(wk) + 24
                    else:
                        dst = uint(z) + uint(zo)
                    if aligned and (int(uint(d)) & 3) == 0:
                        d32 = ptr32(d)
                        o32 = ptr32(dst)
                        k = 0
                        while k < 8:
                            o32[k] = d32[k]
                            k += 1
                    else:
                        o8 = ptr8(dst)
                        k = 0
                        while k < 32:
                            o8[k] = d[k]
                            k += 1
                    calls += 1
            i += 1
            zo += 32
        if n == per_block:
            kc.update(block)
        else:
            kc.update(last)
    return calls


@micropython.viper
def merkle(nb, leaf, sig, path: int, node: int, sha):
    # nb: I || u32str(node) || D_LEAF || Kc || 32 spare bytes (86 bytes); leaf: its first 54 bytes.
    # Hashes the leaf, then climbs to the root with the authentication path at sig[path:], one hash per level
    # over nb = I || u32str(parent) || D_INTR || left || right. Returns the root candidate (bytes).
    b = ptr8(nb)
    s = ptr8(sig)
    d = sha(leaf).digest()
    b[20] = 0x83
    b[21] = 0x83
    while node > 1:
        dp = ptr8(d)
        parent = node >> 1
        b[16] = (parent >> 24) & 0xFF
        b[17] = (parent >> 16) & 0xFF
        b[18] = (parent >> 8) & 0xFF
        b[19] = parent & 0xFF
        if node & 1:
            so = 22
            do = 54
        else:
            so = 54
            do = 22
        k = 0
        while k < 32:
            b[so + k] = s[path + k]
            b[do + k] = dp[k]
            k += 1
        d = sha(nb).digest()
        node = parent
        path += 32
    return d
