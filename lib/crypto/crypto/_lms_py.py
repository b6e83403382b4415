# The Python versions of the LMS chain walk and Merkle climb (crypto._lms_viper has the same in machine code):
# the fallback where the viper emitter is missing, and the reference the viper walk is checked against before
# crypto.lms uses it (then this module is released again). Use crypto.lms, not this module.
from crypto.lms import _sha256

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_N = const(32)
_BLOCK_CHAINS = const(32)  # as crypto.lms


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


def self_test_viper(ots_walk_viper, merkle_viper):
    # A synthetic W=4 walk over 40 chains (two blocks, ~300 hashes): the viper walk must give the same
    # checksum, the same Kc and the same number of hashes as the Python one.
    qp1 = bytearray(_N + 6)
    for k in range(_N):
        qp1[k] = (k * 37 + 11) & 0xFF
    qp1[_N + 2] = 4
    qp1[_N + 4] = 40
    qp1[_N + 5] = 4
    qp2 = bytearray(qp1)
    sig = bytes((k * 7) & 0xFF for k in range(8 + 40 * _N))
    out = []
    for walk, qp in ((ots_walk_viper, qp1), (ots_walk, qp2)):
        kc = _sha256(b"kc")
        block = bytearray(_BLOCK_CHAINS * _N)
        work = bytearray(24 + _N)
        n = walk(qp, sig, 8, block, memoryview(block)[:8 * _N], work, memoryview(work)[1:], kc, _sha256)
        out.append((n, kc.digest(), bytes(qp)))
    if not (out[0] == out[1] and out[0][0] > 0):
        return False
    # and a 5-level climb from node 45 with the same path
    roots = []
    for climb in (merkle_viper, merkle):
        nb = bytearray(22 + 2 * _N)
        for k in range(22 + _N):
            nb[k] = (k * 13 + 1) & 0xFF
        roots.append(climb(nb, memoryview(nb)[:22 + _N], sig, 40, 45, _sha256))
    return roots[0] == roots[1]
