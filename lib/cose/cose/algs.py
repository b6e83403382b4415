# COSE algorithm identifiers (RFC 9053, RFC 8778, RFC 9864) and the primitives behind them. Each crypto module
# is imported only when its algorithm is used.
from cose import CoseError, CoseUnsupported

ES256 = -7
ESP256 = -9
EDDSA = -8
ED25519 = -19
HSS_LMS = -46
HMAC_256_64 = 4
HMAC_256_256 = 5
AES_CCM_16_64_128 = 10
A128KW = -3

# COSE_Key kty / crv
KTY_OKP = 1
KTY_EC2 = 2
KTY_SYMMETRIC = 4
KTY_HSS_LMS = 5
CRV_P256 = 1
CRV_X25519 = 4
CRV_ED25519 = 6

SIGNATURE_ALGS = (ES256, ESP256, EDDSA, ED25519, HSS_LMS)
MAC_ALGS = {HMAC_256_64: 8, HMAC_256_256: 32}
# alg -> (key length, nonce length, tag length)
AEAD_ALGS = {AES_CCM_16_64_128: (16, 13, 8)}
KEY_WRAP_ALGS = {A128KW: 16}


def name(alg):
    from cose._text import alg_name
    return alg_name(alg)


def _unsupported(alg, kind):
    return CoseUnsupported("unsupp", kind, alg)


def key_fits(alg, key):
    """Whether key's type (and alg, if the key names one) allows alg. ES256/ESP256 and EdDSA/Ed25519 pair."""
    if key.alg is not None and key.alg != alg:
        pairs = ((ES256, ESP256), (EDDSA, ED25519))
        if not any(key.alg in p and alg in p for p in pairs):
            return False
    if alg in (ES256, ESP256):
        return key.kty == KTY_EC2 and key.crv == CRV_P256
    if alg in (EDDSA, ED25519):
        return key.kty == KTY_OKP and key.crv == CRV_ED25519
    if alg == HSS_LMS:
        return key.kty == KTY_HSS_LMS
    if alg in MAC_ALGS:
        return key.kty == KTY_SYMMETRIC
    if alg in AEAD_ALGS:
        return key.kty == KTY_SYMMETRIC and len(key.k) == AEAD_ALGS[alg][0]
    if alg in KEY_WRAP_ALGS:
        return key.kty == KTY_SYMMETRIC and len(key.k) == KEY_WRAP_ALGS[alg]
    return False


def check_key(alg, key):
    if not key_fits(alg, key):
        raise CoseError("key fit", key, alg)


def sign(alg, key, tbs):
    from cose._create import sign
    return sign(alg, key, tbs)


def verify(alg, key, tbs, sig):
    """True iff sig is valid; False for a wrong signature (including a malformed one)."""
    if alg not in SIGNATURE_ALGS:
        raise _unsupported(alg, "signature")
    check_key(alg, key)
    pub = key.public_bytes()
    if alg in (ES256, ESP256):
        from crypto import p256
        return p256.verify(pub, tbs, sig)
    if alg in (EDDSA, ED25519):
        from crypto import ed25519
        return ed25519.verify(pub, tbs, sig)
    from crypto import lms
    return lms.hss_verify(pub, tbs, sig)


def mac(alg, key, data):
    n = MAC_ALGS.get(alg)
    if n is None:
        raise _unsupported(alg, "MAC")
    check_key(alg, key)
    from crypto.kdf import hmac_sha256
    return hmac_sha256(key.k, data)[:n]


def aead_params(alg, key):
    p = AEAD_ALGS.get(alg)
    if p is None:
        raise _unsupported(alg, "content encryption")
    check_key(alg, key)
    return p


def aead_encrypt(alg, key, nonce, plaintext, aad):
    klen, nlen, tlen = aead_params(alg, key)
    if len(nonce) != nlen:
        raise CoseError("iv len", alg, nlen)
    from crypto.ccm import AesCcm
    return AesCcm(key.k, tlen).encrypt(nonce, plaintext, aad)


def aead_decrypt(alg, key, nonce, ciphertext, aad):
    klen, nlen, tlen = aead_params(alg, key)
    if len(nonce) != nlen:
        raise CoseError("iv len", alg, nlen)
    from crypto.ccm import AesCcm
    return AesCcm(key.k, tlen).decrypt(nonce, ciphertext, aad)
