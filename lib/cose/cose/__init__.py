# COSE (RFC 9052/9053) on the cbor module: COSE_Sign1, COSE_Mac0, COSE_Encrypt0 (and COSE_Encrypt with A128KW
# recipients). Submodules load on first use (cose.sign1, cose.mac0, cose.encrypt0, cose.encrypt, cose.key), so
# a verifier that needs only Sign1 does not pay for the rest. Signature, MAC and AEAD failures raise
# crypto.InvalidSignature / crypto.InvalidTag; malformed or unsupported structures raise CoseError. Creating
# messages and keys (cose._create) and the error texts (cose._text) load on first use too.


class CoseError(ValueError):
    """Malformed COSE structure, or a key that does not fit the algorithm. e.args holds an error number and
    the values it names; str(e) gives the text (from cose._text, loaded then)."""

    def __str__(self):
        from cose._text import describe
        return describe(self.args)


class CoseUnsupported(CoseError):
    """An algorithm or critical header this implementation does not know."""


def __getattr__(name):
    if name in ("sign1", "mac0", "encrypt0", "encrypt", "key", "algs", "headers"):
        mod = __import__("cose." + name, None, None, [name])
        globals()[name] = mod
        return mod
    raise AttributeError(name)
