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
    from crypto._lms_viper import merkle as _merkle_viper, ots_walk as _ots_walk_viper
except (ImportError, SyntaxError, NotImplementedError, ValueError):  # ValueError: .mpy for another CPU
    _ots_walk_viper = _merkle_viper = None
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


def _ots_walk_py(qp, sig, y_off, block, last, work, wv, kc, sha):
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


_ots_walk = _ots_walk_py


def _merkle_py(nb, leaf, sig, path, node, sha):
    """Python version of _lms_viper.merkle: the leaf hash, then one hash per level up to the root."""
    tmp = sha(leaf).digest()
    nb[20:22] = _D_INTR
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


_merkle = _merkle_py
_BLOCK_CHAINS = 32  # chains per block: 1 KiB of scratch instead of 8.5 KiB for W=1 (p = 265)


def _ots_candidate(ident, q_bytes, ots_type, message, sig, off):
    """Algorithm 4b: the LM-OTS candidate public key Kc from the LM-OTS signature at sig[off:]."""
    if not _checked:
        _pick_walkers()
    w, p, ls = _LMOTS[ots_type]
    c_off = off + 4
    y_off = c_off + _N
    h = _sha256(ident)
    h.update(q_bytes)
    h.update(_D_MESG)
    h.update(sig[c_off:y_off])
    h.update(message)
    qp = bytearray(_N + 6)  # Q || Cksm(Q) || w || p || ls
    qp[0:_N] = h.digest()
    qp[_N + 2] = w
    qp[_N + 3] = p >> 8
    qp[_N + 4] = p & 0xFF
    qp[_N + 5] = ls
    work = bytearray(24 + _N)  # pad || I || u32str(q) || u16str(i) || u8str(j) || tmp (tmp word-aligned)
    work[1:17] = ident
    work[17:21] = q_bytes
    kc = _sha256(ident)
    kc.update(q_bytes)
    kc.update(_D_PBLC)
    block = bytearray(_BLOCK_CHAINS * _N)
    last = memoryview(block)[:(p % _BLOCK_CHAINS) * _N]
    _ots_walk(qp, sig, y_off, block, last, work, memoryview(work)[1:], kc, _sha256)
    return kc.digest()


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
    # I || u32str(node) || D_LEAF/D_INTR || 64 bytes: each tree node is one hash call over this buffer
    nb = bytearray(22 + 2 * _N)
    nb[0:16] = ident
    node = (1 << h) + q
    nb[16] = node >> 24
    nb[17] = (node >> 16) & 0xFF
    nb[18] = (node >> 8) & 0xFF
    nb[19] = node & 0xFF
    nb[20:22] = _D_LEAF
    nb[22:22 + _N] = kc
    tmp = _merkle(nb, memoryview(nb)[:22 + _N], sig, t + 4, node, _sha256)
    # the root is public: a plain comparison leaks nothing
    return tmp == bytes(pub[24:56])


def _check_lms_public_key(pub):
    if len(pub) != LMS_PUBLIC_KEY_LEN:
        return False
    return _u32(pub, 0) in _LMS_HEIGHT and _u32(pub, 4) in _LMOTS


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
    if len(public_key) != 4 + LMS_PUBLIC_KEY_LEN:
        raise CryptoError(14)  # HSS public key must be 60 bytes
    levels = _u32(public_key, 0)
    if levels < 1 or levels > HSS_MAX_LEVELS:
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
    for walk, qp in ((_ots_walk_viper, qp1), (_ots_walk_py, qp2)):
        kc = _sha256(b"kc")
        block = bytearray(_BLOCK_CHAINS * _N)
        work = bytearray(24 + _N)
        n = walk(qp, sig, 8, block, memoryview(block)[:8 * _N], work, memoryview(work)[1:], kc, _sha256)
        out.append((n, kc.digest(), bytes(qp)))
    if not (out[0] == out[1] and out[0][0] > 0):
        return False
    # and a 5-level climb from node 45 with the same path
    roots = []
    for merkle in (_merkle_viper, _merkle_py):
        nb = bytearray(22 + 2 * _N)
        for k in range(22 + _N):
            nb[k] = (k * 13 + 1) & 0xFF
        roots.append(merkle(nb, memoryview(nb)[:22 + _N], sig, 40, 45, _sha256))
    return roots[0] == roots[1]


_checked = False


def _pick_walkers():
    """Switch to the viper walk once it has passed its self-test (on the first verification, not at import)."""
    global _checked, _ots_walk, _merkle
    _checked = True
    if _ots_walk_viper is not None:
        try:
            if _self_test_viper():
                _ots_walk = _ots_walk_viper
                _merkle = _merkle_viper
        except Exception:  # a half-working emitter: keep the Python walk
            pass
