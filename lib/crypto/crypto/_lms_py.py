# The Python versions of the LMS chain walk and Merkle climb (crypto._lms_viper has the same in machine code):
# the fallback where the viper emitter is missing, and the reference crypto._lms_selftest's answers come from
# (case_lms checks them). Use crypto.lms, not this module.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_N = const(32)


def ots_walk(qp, sig, y_off, block, last, work, wv, kc, sha):
    """Python version of _lms_viper.ots_walk (same contract): Cksm(Q) into qp[32:34], then every chain from
    its digit to 2^w - 1, a block of chains at a time, each block into kc in one update."""
    w = qp[34]
    p = (qp[35] << 8) | qp[36]
    top = (1 << w) - 1
    total = 0
    for bit in range(0, 256, w):
        total += top - ((qp[bit >> 3] >> (8 - w - (bit & 7))) & top)
    total <<= qp[37]
    qp[32] = (total >> 8) & 0xFF
    qp[33] = total & 0xFF
    tail = memoryview(work)[24:]
    bv = memoryview(block)
    per_block = len(block) >> 5
    calls = 0
    i = 0
    while i < p:
        n = min(per_block, p - i)
        part = bv if n == per_block else last
        part[:] = sig[y_off + (i << 5):y_off + ((i + n) << 5)]
        zo = 0
        for i in range(i, i + n):
            bit = i * w
            a = (qp[bit >> 3] >> (8 - w - (bit & 7))) & top
            if a != top:
                work[21] = i >> 8
                work[22] = i & 0xFF
                tail[:] = bv[zo:zo + 32]
                for j in range(a, top):
                    work[23] = j
                    tail[:] = sha(wv).digest()
                calls += top - a
                bv[zo:zo + 32] = tail
            zo += 32
        i += 1
        kc.update(part)
    return calls


def merkle(nb, leaf, sig, path, node, sha):
    """Python version of _lms_viper.merkle: the leaf hash, then one hash per level up to the root."""
    tmp = sha(leaf).digest()
    nb[20:22] = b"\x83\x83"  # D_INTR
    while node > 1:
        parent = node >> 1
        nb[16] = parent >> 24
        nb[17] = (parent >> 16) & 0xFF
        nb[18] = (parent >> 8) & 0xFF
        nb[19] = parent & 0xFF
        if node & 1:
            nb[22:22 + _N] = sig[path:path + _N]
            nb[22 + _N:] = tmp
        else:
            nb[22:22 + _N] = tmp
            nb[22 + _N:] = sig[path:path + _N]
        tmp = sha(nb).digest()
        node = parent
        path += _N
    return tmp

