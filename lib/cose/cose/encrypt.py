# COSE_Encrypt (RFC 9052 section 5.1), tag 96, with A128KW (-3) recipients (RFC 9053 section 6.2.1): the
# content key is wrapped per recipient; the content is AES-CCM-16-64-128. unwrap_cek() is exposed for
# callers (SUIT) whose content algorithm lives elsewhere.
from crypto import InvalidTag
from cose import CoseError, CoseUnsupported
from cose import algs as _algs
from cose import headers as _h
from cose.encrypt0 import enc_structure, nonce_for
from cose.key import CoseKey, candidates

TAG = 96


def _recipient(r):
    if not isinstance(r, list) or len(r) not in (3, 4):
        raise CoseError(53)  # COSE_recipient must be an array of 3 items
    if len(r) == 4:
        raise CoseError(54)  # nested recipients are not supported
    hdr = _h.Headers(r[0], r[1])
    if not isinstance(r[2], (bytes, bytearray)):
        raise CoseError(55)  # recipient ciphertext must be a bstr
    return hdr, r[2]


def unwrap_cek(recipients, keys):
    """The content key from the first A128KW recipient a key in keys unwraps. Raises InvalidTag."""
    from crypto.kw import aes_key_unwrap
    if not isinstance(recipients, list) or not recipients:
        raise CoseError(56)  # recipients must be a non-empty array
    tried = False
    for r in recipients:
        hdr, wrapped = _recipient(r)
        alg = hdr.alg
        if alg not in _algs.KEY_WRAP_ALGS:
            continue
        if hdr.protected:
            raise CoseError(57)  # A128KW recipients must have an empty protected header
        try:
            found = candidates(keys, hdr.kid, alg)
        except CoseError:
            continue
        for key in found:
            tried = True
            try:
                return aes_key_unwrap(key.k, wrapped)
            except InvalidTag:
                pass
    if not tried:
        raise CoseError(58)  # no recipient uses a supported key wrap algorithm with a known key
    raise InvalidTag("no recipient key unwraps the content key")


def encrypt(kek, plaintext, alg=_algs.AES_CCM_16_64_128, iv=None, cek=None, external_aad=b"", tagged=True):
    """A COSE_Encrypt for one A128KW recipient (kek: a 16-byte symmetric CoseKey)."""
    from cose._create import encrypt
    return encrypt(kek, plaintext, alg, iv, cek, external_aad, tagged)


def decrypt(msg, keys, ciphertext=None, external_aad=b""):
    arr = _h.unwrap(msg, TAG, 4)
    hdr = _h.Headers(arr[0], arr[1])
    _h.check_bstr_or_nil(arr[2], "ciphertext")
    alg = hdr.alg
    if alg not in _algs.AEAD_ALGS:
        raise CoseUnsupported(3, alg)  # unsupported content encryption algorithm %s
    ct = arr[2]
    if ct is None:
        if ciphertext is None:
            raise CoseError(52)  # detached ciphertext: pass ciphertext=
        ct = bytes(ciphertext)
    cek = CoseKey.symmetric(unwrap_cek(arr[3], keys), alg)
    nonce = nonce_for(hdr, cek, _algs.AEAD_ALGS[alg][1])
    return _algs.aead_decrypt(alg, cek, nonce, ct, enc_structure("Encrypt", hdr.protected_bytes, external_aad))
