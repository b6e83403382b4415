# Texts of CoseError, the names of algorithms and CoseKey's repr, loaded when one is shown, so a
# device spends RAM on them only then. cose raises CoseError(key, values...); str(e) looks the key up here.
from cose import algs as _algs

NAMES = {_algs.ES256: "ES256", _algs.ESP256: "ESP256", _algs.EDDSA: "EdDSA", _algs.ED25519: "Ed25519",
         _algs.HSS_LMS: "HSS-LMS", _algs.HMAC_256_64: "HMAC 256/64", _algs.HMAC_256_256: "HMAC 256/256",
         _algs.AES_CCM_16_64_128: "AES-CCM-16-64-128", _algs.A128KW: "A128KW"}

# key -> text; its %-fields take the values the error carries
TEXTS = {
    "unsupp": "unsupported %s algorithm %s",
    "key fit": "key %r does not fit algorithm %s",
    "iv len": "%s needs a %d-byte IV",
    "prot cbor": "protected header is not valid CBOR: %s",
    "prot map": "protected header is not a map",
    "prot bstr": "protected header must be a bstr",
    "unprot map": "unprotected header must be a map",
    "both maps": "header label %r appears in both maps",
    "crit prot": "crit must be a protected header",
    "crit array": "crit must be a non-empty array",
    "crit label": "crit labels must be int or tstr",
    "crit names": "crit names %r, which is not in the protected header",
    "crit unkn": "unknown critical header %r",
    "no alg": "no alg header",
    "alg type": "alg must be int or tstr",
    "kid bstr": "kid must be a bstr",
    "cbor": "not valid CBOR: %s",
    "tag": "expected COSE tag %d, got tag %d",
    "array": "COSE structure must be an array of %d items",
    "bstr nil": "%s must be a bstr or nil",
    "key bstr": "COSE_Key %s must be a bstr",
    "ec2 curve": "unsupported EC2 curve %r",
    "p256 d": "P-256 private key must be 32 bytes",
    "ec2 no x": "EC2 key without x or d",
    "p256 xy": "P-256 x and y must be 32 bytes each (compressed points not supported)",
    "okp curve": "unsupported OKP curve %r",
    "okp no x": "OKP key without x or d",
    "okp len": "OKP keys are 32 bytes",
    "sym no k": "symmetric key without k",
    "hss pub": "HSS-LMS public key must be 60 bytes",
    "kty": "unsupported key type %r",
    "sym pub": "symmetric keys have no public part",
    "key map": "COSE_Key must be a map",
    "key kty": "COSE_Key kty missing or not an int (text kty not supported)",
    "key alg": "COSE_Key alg must be int or tstr",
    "compressed": "compressed EC2 points are not supported",
    "key cbor": "COSE_Key is not valid CBOR: %s",
    "keyset": "KeySet holds CoseKey objects",
    "keys type": "expected a CoseKey, a KeySet or a list of keys",
    "no kid key": "no key with kid %s for %s",
    "no key": "no key for %s",
    "check bstr": "%s must be a bstr",
    "detached": "detached payload: pass payload=",
    "payload2": "payload given for a message that carries its own",
    "iv both": "both IV and Partial IV given",
    "iv bstr": "IV must be a %d-byte bstr",
    "piv bstr": "Partial IV must be a bstr of 1..%d bytes",
    "piv base": "Partial IV needs a key with a Base IV of 1..%d bytes",
    "no iv": "no IV or Partial IV header",
    "detached c": "detached ciphertext: pass ciphertext=",
    "recipient": "COSE_recipient must be an array of 3 items",
    "nested": "nested recipients are not supported",
    "recip ct": "recipient ciphertext must be a bstr",
    "recips": "recipients must be a non-empty array",
    "kw prot": "A128KW recipients must have an empty protected header",
    "no kw": "no recipient uses a supported key wrap algorithm with a known key",
}
# errors whose value at this position is an algorithm, shown by name
ALG_AT = {"unsupp": 2, "key fit": 2, "iv len": 1, "no kid key": 2, "no key": 1}


def alg_name(alg):
    return NAMES.get(alg, repr(alg))


def describe(args):
    if not args:
        return ""
    text = TEXTS.get(args[0]) if isinstance(args[0], str) else None
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
