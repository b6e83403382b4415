# Creating COSE messages: header maps and their deterministic encoding, signing, MAC and encryption of new
# messages. A device mostly checks what it receives, so this is loaded on first use (sign1.sign, mac0.create,
# encrypt0.encrypt, encrypt.encrypt, headers.build/encode_protected, algs.sign). Use those, not this module.
import cbor

from cose import CoseError, CoseUnsupported
from cose import algs as _algs
from cose import headers as _h
from cose.encrypt0 import enc_structure, nonce_for
from cose.key import CoseKey, check_key

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

# COSE_Key labels (those cose.key reads)
_KTY = const(1)
_KID = const(2)
_ALG = const(3)
_BASE_IV = const(5)
_CRV = const(-1)  # EC2 / OKP
_X = const(-2)
_Y = const(-3)
_D = const(-4)
_K = const(-1)  # Symmetric
_PUB = const(-1)  # HSS-LMS


def encode_protected(m):
    """The bstr contents for a protected map: empty for no headers, else deterministic CBOR."""
    if not m:
        return b""
    return cbor.dumps(m, canonical=True)


def build(alg, protected=None, unprotected=None, kid=None, alg_protected=True):
    """Protected/unprotected maps for a new message: alg goes in the protected map, kid in the unprotected."""
    p = dict(protected) if protected else {}
    u = dict(unprotected) if unprotected else {}
    if alg_protected:
        p[_h.ALG] = alg
    else:
        u[_h.ALG] = alg
    if kid is not None and _h.KID not in p:
        u[_h.KID] = bytes(kid)
    for label in u:
        if label in p:
            raise CoseError("header label %r in both maps" % (label,))
    return p, u


def sign(alg, key, tbs):
    if alg not in _algs.SIGNATURE_ALGS:
        raise CoseUnsupported(1, alg)  # unsupported signature algorithm %s
    check_key(alg, key)
    if key.d is None:
        raise CoseError("signing needs a private key")
    if alg in (_algs.ES256, _algs.ESP256):
        from crypto import p256
        return p256.sign(key.d, tbs)
    if alg in (_algs.EDDSA, _algs.ED25519):
        from crypto import ed25519
        return ed25519.sign(key.d, tbs)
    raise CoseError("HSS-LMS signing is host-only (the private key is stateful): use `hourglass cose sign1`")


def encode_single(tag, context, compute, key, payload, alg, protected, unprotected, external_aad, detached,
                  tagged, include_kid):
    """Build the structure; compute(alg, key, data) gives the signature or MAC over the context array."""
    alg = alg if alg is not None else key.alg
    if alg is None:
        raise CoseError("no algorithm: give alg or a key that names one")
    p, u = build(alg, protected, unprotected, key.kid if include_kid else None)
    pb = encode_protected(p)
    payload = bytes(payload)
    check = compute(alg, key, _h.to_be_checked(context, pb, external_aad, payload))
    arr = [pb, u, None if detached else payload, check]
    return cbor.dumps(cbor.Tag(tag, arr) if tagged else arr)


def sign1(key, payload, alg=None, protected=None, unprotected=None, external_aad=b"", detached=False,
          tagged=True, include_kid=True):
    return encode_single(18, "Signature1", sign, key, payload, alg, protected, unprotected, external_aad,
                         detached, tagged, include_kid)


def mac0(key, payload, alg=None, protected=None, unprotected=None, external_aad=b"", detached=False,
         tagged=True, include_kid=True):
    from cose.mac0 import mac
    return encode_single(17, "MAC0", mac, key, payload, alg, protected, unprotected, external_aad,
                         detached, tagged, include_kid)


def encrypt0(key, plaintext, alg=None, iv=None, protected=None, unprotected=None, external_aad=b"",
             detached=False, tagged=True, include_kid=True):
    alg = alg if alg is not None else key.alg
    if alg is None:
        raise CoseError("no algorithm: give alg or a key that names one")
    klen, nlen, tlen = _algs.aead_params(alg, key)
    p, u = build(alg, protected, unprotected, key.kid if include_kid else None)
    if _h.PARTIAL_IV not in p and _h.PARTIAL_IV not in u and _h.IV not in p and _h.IV not in u:
        if iv is None:
            from crypto.util import random_bytes
            iv = random_bytes(nlen)
        u[_h.IV] = bytes(iv)
    pb = encode_protected(p)
    hdr = _h.Headers(pb, u)
    nonce = nonce_for(hdr, key, nlen)
    ct = _algs.aead_encrypt(alg, key, nonce, plaintext, enc_structure("Encrypt0", pb, external_aad))
    arr = [pb, u, None if detached else ct]
    out = cbor.dumps(cbor.Tag(16, arr) if tagged else arr)
    return (out, ct) if detached else out


def encrypt(kek, plaintext, alg=10, iv=None, cek=None, external_aad=b"", tagged=True):
    """A COSE_Encrypt for one A128KW recipient (kek: a 16-byte symmetric CoseKey)."""
    from crypto.kw import aes_key_wrap
    from crypto.util import random_bytes
    check_key(_algs.A128KW, kek)
    klen, nlen, tlen = _algs.AEAD_ALGS.get(alg, (None, None, None))
    if klen is None:
        raise CoseUnsupported(3, alg)  # unsupported content encryption algorithm %s
    cek = bytes(cek) if cek is not None else random_bytes(klen)
    iv = bytes(iv) if iv is not None else random_bytes(nlen)
    pb = encode_protected({_h.ALG: alg})
    u = {_h.IV: iv}
    ct = _algs.aead_encrypt(alg, CoseKey.symmetric(cek, alg), iv, plaintext,
                            enc_structure("Encrypt", pb, external_aad))
    ru = {_h.ALG: _algs.A128KW}
    if kek.kid is not None:
        ru[_h.KID] = kek.kid
    arr = [pb, u, ct, [[b"", ru, aes_key_wrap(kek.k, cek)]]]
    return cbor.dumps(cbor.Tag(96, arr) if tagged else arr)


# ---- COSE_Key construction and encoding (CoseKey.public_key, to_map, from_raw)

def public_key(key):
    """The same key without its secret parts."""
    if key.kty == _algs.KTY_SYMMETRIC:
        raise CoseError("symmetric keys have no public part")
    pub = key.public_bytes()
    if key.kty == _algs.KTY_EC2:
        return CoseKey(key.kty, key.alg, key.kid, key.crv, x=pub[1:33], y=pub[33:65])
    if key.kty == _algs.KTY_OKP:
        return CoseKey(key.kty, key.alg, key.kid, key.crv, x=pub)
    return CoseKey(key.kty, key.alg, key.kid, pub=pub)


def key_map(key, private):
    m = {_KTY: key.kty}
    if key.kid is not None:
        m[_KID] = key.kid
    if key.alg is not None:
        m[_ALG] = key.alg
    if key.base_iv is not None:
        m[_BASE_IV] = key.base_iv
    if key.kty in (_algs.KTY_EC2, _algs.KTY_OKP):
        m[_CRV] = key.crv
        pub = key.public_bytes()
        if key.kty == _algs.KTY_EC2:
            m[_X] = pub[1:33]
            m[_Y] = pub[33:65]
        else:
            m[_X] = pub
        if private and key.d is not None:
            m[_D] = key.d
    elif key.kty == _algs.KTY_HSS_LMS:
        m[_PUB] = key.pub
    else:
        if not private:
            raise CoseError("a symmetric COSE_Key is all secret: pass private=True")
        m[_K] = key.k
    return m


def key_from_raw(cls, alg, raw, kid, private):
    """A key for alg from raw bytes: P-256 65-byte uncompressed (or 64-byte x||y) public or 32-byte private;
    Ed25519 32-byte public or (private=True) seed; HSS-LMS 60-byte public; symmetric algs the key itself."""
    raw = bytes(raw)
    if alg in (_algs.ES256, _algs.ESP256):
        if private:
            return cls(_algs.KTY_EC2, alg, kid, _algs.CRV_P256, d=raw)
        if len(raw) == 65 and raw[0] == 4:
            raw = raw[1:]
        if len(raw) != 64:
            raise CoseError("P-256 public key must be 65 bytes uncompressed (or x||y)")
        from crypto import p256
        try:
            p256.decode_public_key(b"\x04" + raw)
        except ValueError:
            raise CoseError("P-256 public key is not on the curve")
        return cls(_algs.KTY_EC2, alg, kid, _algs.CRV_P256, x=raw[:32], y=raw[32:])
    if alg in (_algs.EDDSA, _algs.ED25519):
        if private:
            return cls(_algs.KTY_OKP, alg, kid, _algs.CRV_ED25519, d=raw)
        return cls(_algs.KTY_OKP, alg, kid, _algs.CRV_ED25519, x=raw)
    if alg == _algs.HSS_LMS:
        if private:
            raise CoseError("HSS-LMS private keys stay on the host")
        return cls(_algs.KTY_HSS_LMS, alg, kid, pub=raw)
    if alg in _algs.MAC_ALGS or alg in _algs.AEAD_ALGS or alg in _algs.KEY_WRAP_ALGS:
        key = cls(_algs.KTY_SYMMETRIC, alg, kid, k=raw)
        check_key(alg, key)
        return key
    raise CoseError("unsupported algorithm %s for a raw key" % _algs.name(alg))
