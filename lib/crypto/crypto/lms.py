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
from crypto.util import ct_equal

_sha256 = hashlib.sha256

_N = 32
_D_PBLC = b"\x80\x80"
_D_MESG = b"\x81\x81"
_D_LEAF = b"\x82\x82"
_D_INTR = b"\x83\x83"

# LMS typecode -> tree height h (m = 32)
_LMS_HEIGHT = {5: 5, 6: 10, 7: 15, 8: 20, 9: 25}
# LM-OTS typecode -> (w, p, ls)
_LMOTS = {1: (1, 265, 7), 2: (2, 133, 6), 3: (4, 67, 4), 4: (8, 34, 0)}

HSS_MAX_LEVELS = 8

try:  # machine-code chain walk where the port has the viper emitter; checked below before use
    from crypto._lms_viper import chains as _chains_viper
except (ImportError, SyntaxError, NotImplementedError):
    _chains_viper = None
LMS_PUBLIC_KEY_LEN = 56


def _u32(b, off):
    return (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]


def lms_signature_length(sig, off=0):
    """Length of the LMS signature starting at sig[off], from its own type fields; 0 if malformed."""
    if len(sig) - off < 8:
        return 0
    ots = _LMOTS.get(_u32(sig, off + 4))
    if ots is None:
        return 0
    t = off + 8 + _N + ots[1] * _N
    if len(sig) < t + 4:
        return 0
    h = _LMS_HEIGHT.get(_u32(sig, t))
    if h is None:
        return 0
    total = t + 4 + h * _N - off
    return total if len(sig) - off >= total else 0


def _digit_sum_table(w):
    """Sum of the base-2^w digits of each byte value, for the checksum in one pass over the 32 bytes of Q."""
    mask = (1 << w) - 1
    t = bytearray(256)
    for b in range(256):
        s = 0
        for k in range(0, 8, w):
            s += (b >> k) & mask
        t[b] = s
    return bytes(t)


_DIGIT_SUMS = {}


def _chains_py(qp, z, work, sha):
    """Python version of _lms_viper.chains (same contract): advance every chain from its digit to 2^w - 1."""
    w = qp[34]
    p = (qp[35] << 8) | qp[36]
    top = (1 << w) - 1
    per_byte = 8 // w
    mv = memoryview(work)
    tail = mv[23:]
    zv = memoryview(z)
    calls = 0
    i = 0
    for bi in range(_N + 2):
        b = qp[bi]
        shift = 8 - w
        for _ in range(per_byte):
            if i >= p:
                return calls
            a = (b >> shift) & top
            shift -= w
            if a != top:
                zo = 22 + 32 * i
                work[20] = i >> 8
                work[21] = i & 0xFF
                tail[:] = zv[zo:zo + 32]
                for j in range(a, top):
                    work[22] = j
                    tail[:] = sha(work).digest()
                calls += top - a
                zv[zo:zo + 32] = tail
            i += 1
    return calls


_chains = _chains_py


def _ots_candidate(ident, q_bytes, ots_type, message, sig, off):
    """Algorithm 4b: the LM-OTS candidate public key Kc from the LM-OTS signature at sig[off:]."""
    w, p, ls = _LMOTS[ots_type]
    c_off = off + 4
    y_off = c_off + _N
    h = _sha256(ident)
    h.update(q_bytes)
    h.update(_D_MESG)
    h.update(sig[c_off:y_off])
    h.update(message)
    # qp = Q || Cksm(Q) || w || p (the digits a_i come from the first 34 bytes)
    qp = bytearray(_N + 5)
    qp[0:_N] = h.digest()
    table = _DIGIT_SUMS.get(w)
    if table is None:
        table = _DIGIT_SUMS[w] = _digit_sum_table(w)
    s = 0
    for k in range(_N):
        s += table[qp[k]]
    cksm = ((_N * 8 // w) * ((1 << w) - 1) - s) << ls
    qp[_N] = cksm >> 8
    qp[_N + 1] = cksm & 0xFF
    qp[_N + 2] = w
    qp[_N + 3] = p >> 8
    qp[_N + 4] = p & 0xFF
    # z = I || u32str(q) || D_PBLC || y[0..p-1]: the chains run in place, then Kc is one hash over z
    z = bytearray(22 + p * _N)
    z[0:16] = ident
    z[16:20] = q_bytes
    z[20:22] = _D_PBLC
    z[22:] = sig[y_off:y_off + p * _N]
    work = bytearray(23 + _N)  # I || u32str(q) || u16str(i) || u8str(j) || tmp
    work[0:16] = ident
    work[16:20] = q_bytes
    _chains(qp, z, work, _sha256)
    return _sha256(z).digest()


def _lms_verify(pub, message, sig, off, length):
    """Algorithm 6 for one LMS public key (56 bytes) and the LMS signature sig[off:off+length]."""
    lms_type = _u32(pub, 0)
    ots_type = _u32(pub, 4)
    h = _LMS_HEIGHT[lms_type]
    if _u32(sig, off + 4) != ots_type:
        return False
    w, p, ls = _LMOTS[ots_type]
    t = off + 8 + _N + p * _N
    if _u32(sig, t) != lms_type or length != t + 4 + h * _N - off:
        return False
    q = _u32(sig, off)
    if q >= 1 << h:
        return False
    ident = pub[8:24]
    q_bytes = sig[off:off + 4]
    kc = _ots_candidate(ident, q_bytes, ots_type, message, sig, off + 4)
    node = (1 << h) + q
    nb = bytearray(4)

    def set_node(v):
        nb[0] = (v >> 24) & 0xFF
        nb[1] = (v >> 16) & 0xFF
        nb[2] = (v >> 8) & 0xFF
        nb[3] = v & 0xFF

    set_node(node)
    d = _sha256(ident)
    d.update(nb)
    d.update(_D_LEAF)
    d.update(kc)
    tmp = d.digest()
    path = t + 4
    while node > 1:
        sib = sig[path:path + _N]
        set_node(node >> 1)
        d = _sha256(ident)
        d.update(nb)
        d.update(_D_INTR)
        if node & 1:
            d.update(sib)
            d.update(tmp)
        else:
            d.update(tmp)
            d.update(sib)
        tmp = d.digest()
        node >>= 1
        path += _N
    return ct_equal(tmp, pub[24:56])


def _check_lms_public_key(pub):
    if len(pub) != LMS_PUBLIC_KEY_LEN:
        return False
    return _u32(pub, 0) in _LMS_HEIGHT and _u32(pub, 4) in _LMOTS


def lms_verify(public_key, message, signature):
    """Verify a single-tree LMS signature (56-byte LMS public key)."""
    public_key = memoryview(public_key)
    if not _check_lms_public_key(public_key):
        raise CryptoError("malformed LMS public key")
    signature = memoryview(signature)
    n = lms_signature_length(signature)
    if n == 0 or n != len(signature):
        return False
    return _lms_verify(public_key, message, signature, 0, n)


def hss_verify(public_key, message, signature):
    """Verify an HSS signature (RFC 8554 section 6.3) with a 60-byte HSS public key. Returns True or False."""
    public_key = memoryview(public_key)
    if len(public_key) != 4 + LMS_PUBLIC_KEY_LEN:
        raise CryptoError("HSS public key must be 60 bytes")
    levels = _u32(public_key, 0)
    if levels < 1 or levels > HSS_MAX_LEVELS:
        raise CryptoError("HSS public key: levels must be 1..8")
    key = public_key[4:]
    if not _check_lms_public_key(key):
        raise CryptoError("malformed HSS public key")
    sig = memoryview(signature)
    if len(sig) < 4 or _u32(sig, 0) != levels - 1:
        return False
    off = 4
    for _ in range(levels - 1):
        n = lms_signature_length(sig, off)
        if n == 0:
            return False
        child = sig[off + n:off + n + LMS_PUBLIC_KEY_LEN]
        if len(child) != LMS_PUBLIC_KEY_LEN or not _check_lms_public_key(child):
            return False
        if not _lms_verify(key, child, sig, off, n):
            return False
        key = child
        off += n + LMS_PUBLIC_KEY_LEN
    n = lms_signature_length(sig, off)
    if n == 0 or off + n != len(sig):
        return False
    return _lms_verify(key, message, sig, off, n)


def _self_test_viper():
    # A synthetic W=4 walk over 8 chains (~60 hashes): the viper walk must advance the same chains to the
    # same values as the Python one.
    qp = bytearray(_N + 5)
    for k in range(_N + 2):
        qp[k] = (k * 37 + 11) & 0xFF
    qp[_N + 2] = 4
    qp[_N + 4] = 8
    z1 = bytearray(22 + 8 * _N)
    for k in range(len(z1)):
        z1[k] = k & 0xFF
    z2 = bytearray(z1)
    w1 = bytearray(23 + _N)
    w2 = bytearray(23 + _N)
    n1 = _chains_viper(qp, z1, w1, _sha256)
    n2 = _chains_py(qp, z2, w2, _sha256)
    return n1 == n2 and z1 == z2


if _chains_viper is not None:
    try:
        if _self_test_viper():
            _chains = _chains_viper
    except Exception:  # a half-working emitter: keep the Python walk
        pass
