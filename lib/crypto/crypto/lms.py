# HSS/LMS signature verification (RFC 8554), every SHA-256 parameter set with n = m = 32.
#
# Nearly all the time goes into the LM-OTS hash chains: up to 34 x 255 SHA-256 calls over 55-byte inputs. Each
# chain step rewrites the chain index and the previous digest inside one preallocated buffer and hashes it, so
# the Python work per call is one byte store and one slice copy, and nothing is allocated but the digest.
#
# Signatures are untrusted: every length is checked against the parameter sets before use, and a malformed
# signature verifies as False. A malformed public key raises CryptoError (it is configuration, not input).
import hashlib

from crypto import CryptoError

_sha256 = hashlib.sha256

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_N = const(32)
# the domain separators D_PBLC, D_MESG, D_LEAF (D_INTR is in crypto._lms_py) are written where they are used

# The parameter sets, from the typecodes (no tables on the heap): LMS typecodes 5..9 (LMS_SHA256_M32_H5 ..
# _H25) have tree height h = 5 * (typecode - 4); LM-OTS typecodes 1..4 (LMOTS_SHA256_N32_W1 .. _W8) have
# w = 2^(typecode - 1) and the p and ls of _p_ls().

_HSS_MAX_LEVELS = const(8)

_LMS_PUBLIC_KEY_LEN = const(56)


def _p_ls(ots_type):
    """(p, ls) of LM-OTS typecode 1..4 (RFC 8554 table 1)."""
    i = ots_type - 1
    return (265, 133, 67, 34)[i], (7, 6, 4, 0)[i]


def _u32(b, off):
    return (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]


def lms_signature_length(sig, off=0):
    """Length of the LMS signature starting at sig[off], from its own type fields; 0 if malformed."""
    if len(sig) - off < 8:
        return 0
    ots = _u32(sig, off + 4)
    if not 1 <= ots <= 4:
        return 0
    t = off + 8 + _N + _p_ls(ots)[0] * _N
    if len(sig) < t + 4:
        return 0
    h = _u32(sig, t) - 4
    if not 1 <= h <= 5:
        return 0
    h *= 5
    total = t + 4 + h * _N - off
    return total if len(sig) - off >= total else 0


_ots_walk = None  # chosen on the first verification (_pick_walkers)


_merkle = None
_BLOCK_CHAINS = const(32)  # chains per block: 1 KiB of scratch instead of 8.5 KiB for W=1 (p = 265)


def _lms_verify(pub, message, sig, off, length):
    """Algorithm 6 for one LMS public key (56 bytes) and the LMS signature sig[off:off+length]."""
    lms_type = _u32(pub, 0)
    ots_type = _u32(pub, 4)
    h = 5 * (lms_type - 4)
    if _u32(sig, off + 4) != ots_type:
        return False
    w = 1 << (ots_type - 1)
    p, ls = _p_ls(ots_type)
    t = off + 8 + _N + p * _N
    if _u32(sig, t) != lms_type or length != t + 4 + h * _N - off:
        return False
    q = _u32(sig, off)
    if q >= 1 << h:
        return False
    ident = pub[8:24]
    q_bytes = sig[off:off + 4]
    # Algorithm 4b: the LM-OTS candidate public key Kc from the LM-OTS signature at sig[off + 4:]
    block = bytearray(_BLOCK_CHAINS * _N)  # first: the walk's largest piece (the self-test uses it too)
    if _ots_walk is None:
        _pick_walkers(block)
    c_off = off + 8
    y_off = c_off + _N
    hm = _sha256(ident)
    hm.update(q_bytes)
    hm.update(b"\x81\x81")  # D_MESG
    hm.update(sig[c_off:y_off])
    hm.update(message)
    qp = bytearray(_N + 6)  # Q || Cksm(Q) || w || p || ls
    qp[0:_N] = hm.digest()
    qp[_N + 2] = w
    qp[_N + 3] = p >> 8
    qp[_N + 4] = p & 0xFF
    qp[_N + 5] = ls
    work = bytearray(24 + _N)  # pad || I || u32str(q) || u16str(i) || u8str(j) || tmp (tmp word-aligned)
    work[1:17] = ident
    work[17:21] = q_bytes
    hm = _sha256(ident)
    hm.update(q_bytes)
    hm.update(b"\x80\x80")  # D_PBLC
    last = memoryview(block)[:(p % _BLOCK_CHAINS) * _N]
    _ots_walk(qp, sig, y_off, block, last, work, memoryview(work)[1:], hm, _sha256)
    kc = hm.digest()
    qp = work = block = last = None  # the walk's scratch, before the Merkle climb
    # I || u32str(node) || D_LEAF/D_INTR || 64 bytes: each tree node is one hash call over this buffer
    nb = bytearray(22 + 2 * _N)
    nb[0:16] = ident
    node = (1 << h) + q
    nb[16] = node >> 24
    nb[17] = (node >> 16) & 0xFF
    nb[18] = (node >> 8) & 0xFF
    nb[19] = node & 0xFF
    nb[20:22] = b"\x82\x82"  # D_LEAF
    nb[22:22 + _N] = kc
    tmp = _merkle(nb, memoryview(nb)[:22 + _N], sig, t + 4, node, _sha256)
    # the root is public: a plain comparison leaks nothing
    return tmp == bytes(pub[24:56])


def _check_lms_public_key(pub):
    if len(pub) != _LMS_PUBLIC_KEY_LEN:
        return False
    return 5 <= _u32(pub, 0) <= 9 and 1 <= _u32(pub, 4) <= 4


def lms_verify(public_key, message, signature):
    """Verify a single-tree LMS signature (56-byte LMS public key)."""
    public_key = memoryview(public_key)
    if not _check_lms_public_key(public_key):
        raise CryptoError(13)  # malformed LMS public key
    signature = memoryview(signature)
    n = lms_signature_length(signature)
    if n == 0 or n != len(signature):
        return False
    return _lms_verify(public_key, message, signature, 0, n)


def hss_verify(public_key, message, signature):
    """Verify an HSS signature (RFC 8554 section 6.3) with a 60-byte HSS public key. Returns True or False."""
    public_key = memoryview(public_key)
    if len(public_key) != 4 + _LMS_PUBLIC_KEY_LEN:
        raise CryptoError(14)  # HSS public key must be 60 bytes
    levels = _u32(public_key, 0)
    if levels < 1 or levels > _HSS_MAX_LEVELS:
        raise CryptoError(15)  # HSS public key: levels must be 1..8
    key = public_key[4:]
    if not _check_lms_public_key(key):
        raise CryptoError(16)  # malformed HSS public key
    sig = memoryview(signature)
    if len(sig) < 4 or _u32(sig, 0) != levels - 1:
        return False
    off = 4
    for _ in range(levels - 1):
        n = lms_signature_length(sig, off)
        if n == 0:
            return False
        child = sig[off + n:off + n + _LMS_PUBLIC_KEY_LEN]
        if len(child) != _LMS_PUBLIC_KEY_LEN or not _check_lms_public_key(child):
            return False
        if not _lms_verify(key, child, sig, off, n):
            return False
        key = child
        off += n + _LMS_PUBLIC_KEY_LEN
    n = lms_signature_length(sig, off)
    if n == 0 or off + n != len(sig):
        return False
    return _lms_verify(key, message, sig, off, n)



def _pick_walkers(block):
    """The machine-code walk (crypto._lms_viper, where the port has the viper emitter) once it has passed its
    known-answer test (crypto._lms_selftest, released after), on the first verification, not at import; else
    the Python walk (crypto._lms_py)."""
    global _ots_walk, _merkle
    _ots_walk = None
    try:
        from crypto._lms_viper import merkle, ots_walk
        from crypto import _lms_selftest, release
        try:
            if _lms_selftest.passes(ots_walk, merkle, block):
                _ots_walk = ots_walk
                _merkle = merkle
        finally:
            release("crypto._lms_selftest")
    except (ImportError, SyntaxError, NotImplementedError, ValueError):  # ValueError: .mpy for another CPU
        pass
    except Exception:  # a half-working emitter: keep the Python walk
        pass
    if _ots_walk is None:
        from crypto import _lms_py
        _ots_walk, _merkle = _lms_py.ots_walk, _lms_py.merkle
