# The known-answer test of the viper LMS walk (crypto._lms_viper), run by crypto.lms on the first verification
# and released after: a synthetic W=4 walk over 40 chains (two blocks, ~300 hashes) and a 5-level Merkle climb
# from node 45. ANSWER is what the Python walk (crypto._lms_py) gives, which case_lms checks, so the Python
# module is not loaded beside the viper one for the check (it was the verification's heap peak).
from crypto.lms import _sha256

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_N = const(32)

ANSWER = (
    314,
    b"\x02\xbb\xb4\x26\x18\x82\x6f\x88\xe0\xe5\x40\xca\xfa\xc1\xae\xc6\x8a\xe3\xb5\x0f\x2d\xfa\xe2\xc2"
    b"\xf4\x2f\x94\xfc\xf2\x57\x9c\x6e",
    b"\x0b\x30\x55\x7a\x9f\xc4\xe9\x0e\x33\x58\x7d\xa2\xc7\xec\x11\x36\x5b\x80\xa5\xca\xef\x14\x39\x5e"
    b"\x83\xa8\xcd\xf2\x17\x3c\x61\x86\x1e\xe0\x04\x00\x28\x04",
    b"\xb1\x43\x9a\xdf\xda\xca\x78\x78\x14\x16\x5e\x3f\xc7\x2b\x79\x54\xa4\x3b\x39\x3e\x50\xc2\x32\xf1"
    b"\x77\xb4\x3e\xb4\xe4\xe0\x74\x84",
)


def run(ots_walk, merkle, block):
    """(hashes, Kc, the walk's qp afterwards, the climb's root) of the synthetic walk and climb; block: the
    walk's scratch (a multiple of 32 bytes, crypto.lms's)."""
    qp = bytearray(_N + 6)
    for k in range(_N):
        qp[k] = (k * 37 + 11) & 0xFF
    qp[_N + 2] = 4
    qp[_N + 4] = 40
    qp[_N + 5] = 4
    sig = bytearray(8 + 40 * _N)  # filled in place: bytes() of a generator would grow it by copies
    for k in range(len(sig)):
        sig[k] = (k * 7) & 0xFF
    kc = _sha256(b"kc")
    work = bytearray(24 + _N)
    last = memoryview(block)[:40 % (len(block) // _N) * _N]
    n = ots_walk(qp, sig, 8, block, last, work, memoryview(work)[1:], kc, _sha256)
    last = work = None
    nb = bytearray(22 + 2 * _N)
    for k in range(22 + _N):
        nb[k] = (k * 13 + 1) & 0xFF
    return n, kc.digest(), bytes(qp), merkle(nb, memoryview(nb)[:22 + _N], sig, 40, 45, _sha256)


def passes(ots_walk, merkle, block):
    return run(ots_walk, merkle, block) == ANSWER
