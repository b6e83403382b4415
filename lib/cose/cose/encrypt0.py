# COSE_Encrypt0 (RFC 9052 section 5.2), tag 16, with AES-CCM-16-64-128 (10). The nonce is the IV header (5),
# or the key's Base IV XOR the left-padded Partial IV header (6).
import cbor

from crypto import InvalidTag
from cose import CoseError
from cose import algs as _algs
from cose import headers as _h
from cose.key import candidates

TAG = 16


def enc_structure(context, protected_bytes, external_aad):
    return cbor.dumps([context, protected_bytes, bytes(external_aad)])


def nonce_for(hdr, key, nlen):
    iv = hdr.get(_h.IV)
    piv = hdr.get(_h.PARTIAL_IV)
    if iv is not None and piv is not None:
        raise CoseError("iv both")
    if iv is not None:
        if not isinstance(iv, (bytes, bytearray)) or len(iv) != nlen:
            raise CoseError("iv bstr", nlen)
        return bytes(iv)
    if piv is not None:
        if not isinstance(piv, (bytes, bytearray)) or not 0 < len(piv) <= nlen:
            raise CoseError("piv bstr", nlen)
        base = key.base_iv
        if base is None or not 0 < len(base) <= nlen:
            raise CoseError("piv base", nlen)
        # Partial IV left-padded, Base IV right-padded with zeros (RFC 9052 section 3.1, example C.4.2)
        nonce = bytearray(base + bytes(nlen - len(base)))
        off = nlen - len(piv)
        for i in range(len(piv)):
            nonce[off + i] ^= piv[i]
        return bytes(nonce)
    raise CoseError("no iv")


def encrypt(key, plaintext, alg=None, iv=None, protected=None, unprotected=None, external_aad=b"",
            detached=False, tagged=True, include_kid=True):
    """A COSE_Encrypt0 of plaintext (a random IV unless iv= or a Partial IV header is given); (message,
    ciphertext) when detached."""
    from cose._create import encrypt0
    return encrypt0(key, plaintext, alg, iv, protected, unprotected, external_aad, detached, tagged, include_kid)


def decode(msg):
    arr = _h.unwrap(msg, TAG, 3)
    hdr = _h.Headers(arr[0], arr[1])
    _h.check_bstr_or_nil(arr[2], "ciphertext")
    return hdr, arr[2]


def decrypt(msg, keys, ciphertext=None, external_aad=b""):
    """Decrypt a COSE_Encrypt0 (ciphertext= for a detached one); raises InvalidTag for every candidate key."""
    hdr, ct = decode(msg)
    alg = hdr.alg
    if alg not in _algs.AEAD_ALGS:
        raise _algs._unsupported(alg, "content encryption")
    if ct is None:
        if ciphertext is None:
            raise CoseError("detached c")
        ct = bytes(ciphertext)
    aad = enc_structure("Encrypt0", hdr.protected_bytes, external_aad)
    for key in candidates(keys, hdr.kid, alg):
        nonce = nonce_for(hdr, key, _algs.AEAD_ALGS[alg][1])
        try:
            return _algs.aead_decrypt(alg, key, nonce, ct, aad)
        except InvalidTag:
            pass
    raise InvalidTag("COSE_Encrypt0 does not decrypt (%s)" % _algs.name(alg))
