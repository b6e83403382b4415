# Texts of CoseError, the names of algorithms and CoseKey's repr, loaded when one is shown, so a
# device spends RAM on them only then. cose raises CoseError(n, values...) (n: a small int, no interned
# name); str(e) looks n up here.
from cose import algs as _algs

NAMES = {_algs.ES256: "ES256", _algs.ESP256: "ESP256", _algs.EDDSA: "EdDSA", _algs.ED25519: "Ed25519",
         _algs.HSS_LMS: "HSS-LMS", _algs.HMAC_256_64: "HMAC 256/64", _algs.HMAC_256_256: "HMAC 256/256",
         _algs.AES_CCM_16_64_128: "AES-CCM-16-64-128", _algs.A128KW: "A128KW"}

# error number -> text; its %-fields take the values the error carries
TEXTS = {
    1: "unsupported signature algorithm %s",
    2: "unsupported MAC algorithm %s",
    3: "unsupported content encryption algorithm %s",
    4: "key %r does not fit algorithm %s",
    5: "%s needs a %d-byte IV",
    6: "protected header is not valid CBOR: %s",
    7: "protected header is not a map",
    8: "protected header must be a bstr",
    9: "unprotected header must be a map",
    10: "header label %r appears in both maps",
    11: "crit must be a protected header",
    12: "crit must be a non-empty array",
    13: "crit labels must be int or tstr",
    14: "crit names %r, which is not in the protected header",
    15: "unknown critical header %r",
    16: "no alg header",
    17: "alg must be int or tstr",
    18: "kid must be a bstr",
    19: "not valid CBOR: %s",
    20: "expected COSE tag %d, got tag %d",
    21: "COSE structure must be an array of %d items",
    22: "%s must be a bstr or nil",
    23: "COSE_Key %s must be a bstr",
    24: "unsupported EC2 curve %r",
    25: "P-256 private key must be 32 bytes",
    26: "EC2 key without x or d",
    27: "P-256 x and y must be 32 bytes each (compressed points not supported)",
    28: "unsupported OKP curve %r",
    29: "OKP key without x or d",
    30: "OKP keys are 32 bytes",
    31: "symmetric key without k",
    32: "HSS-LMS public key must be 60 bytes",
    33: "unsupported key type %r",
    34: "symmetric keys have no public part",
    35: "COSE_Key must be a map",
    36: "COSE_Key kty missing or not an int (text kty not supported)",
    37: "COSE_Key alg must be int or tstr",
    38: "compressed EC2 points are not supported",
    39: "COSE_Key is not valid CBOR: %s",
    40: "KeySet holds CoseKey objects",
    41: "expected a CoseKey, a KeySet or a list of keys",
    42: "no key with kid %s for %s",
    43: "no key for %s",
    44: "%s must be a bstr",
    45: "detached payload: pass payload=",
    46: "payload given for a message that carries its own",
    47: "both IV and Partial IV given",
    48: "IV must be a %d-byte bstr",
    49: "Partial IV must be a bstr of 1..%d bytes",
    50: "Partial IV needs a key with a Base IV of 1..%d bytes",
    51: "no IV or Partial IV header",
    52: "detached ciphertext: pass ciphertext=",
    53: "COSE_recipient must be an array of 3 items",
    54: "nested recipients are not supported",
    55: "recipient ciphertext must be a bstr",
    56: "recipients must be a non-empty array",
    57: "A128KW recipients must have an empty protected header",
    58: "no recipient uses a supported key wrap algorithm with a known key",
}
# errors whose value at this position is an algorithm, shown by name
ALG_AT = {1: 1, 2: 1, 3: 1, 4: 2, 5: 1, 42: 2, 43: 1}


def alg_name(alg):
    return NAMES.get(alg, repr(alg))


# what sign1, mac0 and encrypt0 say when no key verifies (the text of their InvalidSignature / InvalidTag)
_FAILED = {1: "COSE_Sign1 signature does not verify (%s)", 2: "COSE_Mac0 tag does not verify (%s)",
           3: "COSE_Encrypt0 does not decrypt (%s)"}


def failed(which, alg):
    return _FAILED[which] % alg_name(alg)


def describe(args):
    if not args:
        return ""
    text = TEXTS.get(args[0]) if type(args[0]) is int else None
    if text is None:
        return " ".join(str(a) for a in args)
    values = list(args[1:])
    at = ALG_AT.get(args[0])
    if at is not None:
        values[at - 1] = alg_name(values[at - 1])
    return text % tuple(values) if values else text


def key_repr(key):
    parts = ["kty=%r" % key.kty]
    if key.alg is not None:
        parts.append("alg=%s" % alg_name(key.alg))
    if key.kid is not None:
        parts.append("kid=%s" % key.kid.hex())
    if key.crv is not None:
        parts.append("crv=%r" % key.crv)
    if key.d is not None or key.k is not None:
        parts.append("secret=hidden")
    return "<CoseKey %s>" % " ".join(parts)
