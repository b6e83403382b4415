# COSE algorithm identifiers (RFC 9053, RFC 8778, RFC 9864) and the primitives behind them, for creating
# messages and for the host tools (which import this module alone). Verifying a message does not load it:
# cose.key, sign1, mac0 and encrypt0 keep the numbers they need as private constants. Each crypto module is
# imported only when its algorithm is used.
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


def sign(alg, key, tbs):
    from cose._create import sign
    return sign(alg, key, tbs)


def aead_params(alg, key):
    p = AEAD_ALGS.get(alg)
    if p is None:
        raise CoseUnsupported(3, alg)  # unsupported content encryption algorithm %s
    from cose.key import check_key
    check_key(alg, key)
    return p


def aead_encrypt(alg, key, nonce, plaintext, aad):
    klen, nlen, tlen = aead_params(alg, key)
    if len(nonce) != nlen:
        raise CoseError(5, alg, nlen)  # %s needs a %d-byte IV
    from crypto.ccm import AesCcm
    return AesCcm(key.k, tlen).encrypt(nonce, plaintext, aad)


def aead_decrypt(alg, key, nonce, ciphertext, aad):
    klen, nlen, tlen = aead_params(alg, key)
    if len(nonce) != nlen:
        raise CoseError(5, alg, nlen)  # %s needs a %d-byte IV
    from crypto.ccm import AesCcm
    return AesCcm(key.k, tlen).decrypt(nonce, ciphertext, aad)
