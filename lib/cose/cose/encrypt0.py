# COSE_Encrypt0 (RFC 9052 section 5.2), tag 16, with AES-CCM-16-64-128 (10). The nonce is the IV header (5),
# or the key's Base IV XOR the left-padded Partial IV header (6).
import cbor

from crypto import InvalidTag
from cose import CoseError, CoseUnsupported
from cose import headers as _h
from cose.key import candidates

TAG = 16


def enc_structure(context, protected_bytes, external_aad):
    return cbor.dumps([context, protected_bytes, bytes(external_aad)])


def nonce_for(hdr, key, nlen):
    iv = hdr.get(_h.IV)
    piv = hdr.get(_h.PARTIAL_IV)
    if iv is not None and piv is not None:
        raise CoseError(47)  # both IV and Partial IV given
    if iv is not None:
        if not isinstance(iv, (bytes, bytearray)) or len(iv) != nlen:
            raise CoseError(48, nlen)  # IV must be a %d-byte bstr
        return bytes(iv)
    if piv is not None:
        if not isinstance(piv, (bytes, bytearray)) or not 0 < len(piv) <= nlen:
            raise CoseError(49, nlen)  # Partial IV must be a bstr of 1..%d bytes
        base = key.base_iv
        if base is None or not 0 < len(base) <= nlen:
            raise CoseError(50, nlen)  # Partial IV needs a key with a Base IV of 1..%d bytes
        # Partial IV left-padded, Base IV right-padded with zeros (RFC 9052 section 3.1, example C.4.2)
        nonce = bytearray(base + bytes(nlen - len(base)))
        off = nlen - len(piv)
        for i in range(len(piv)):
            nonce[off + i] ^= piv[i]
        return bytes(nonce)
    raise CoseError(51)  # no IV or Partial IV header


def encrypt(*args, **kwargs):
    """A COSE_Encrypt0: encrypt(key, plaintext, alg=None, iv=None, protected=None, unprotected=None,
    external_aad=b"", detached=False, tagged=True, include_kid=True), with a random IV unless iv= or a Partial IV
    header is given; (message, ciphertext) when detached."""
    from cose._create import encrypt0
    return encrypt0(*args, **kwargs)


def decode(msg):
    arr = _h.unwrap(msg, TAG, 3)
    hdr = _h.Headers(arr[0], arr[1])
    _h.check_bstr_or_nil(arr[2], "ciphertext")
    return hdr, arr[2]


def decrypt(msg, keys, ciphertext=None, external_aad=b""):
    """Decrypt a COSE_Encrypt0 (ciphertext= for a detached one); raises InvalidTag for every candidate key."""
    hdr, ct = decode(msg)
    alg = hdr.alg
    if alg != 10:  # AES-CCM-16-64-128: 16-byte key, 13-byte nonce, 8-byte tag
        raise CoseUnsupported(3, alg)  # unsupported content encryption algorithm %s
    if ct is None:
        if ciphertext is None:
            raise CoseError(52)  # detached ciphertext: pass ciphertext=
        ct = bytes(ciphertext)
    aad = enc_structure("Encrypt0", hdr.protected_bytes, external_aad)
    from crypto.ccm import AesCcm
    for key in candidates(keys, hdr.kid, alg):  # symmetric 16-byte keys only
        nonce = nonce_for(hdr, key, 13)
        try:
            return AesCcm(key.k, 8).decrypt(nonce, ct, aad)
        except InvalidTag:
            pass
    from cose._text import failed
    raise InvalidTag(failed(3, alg))
