# Device crypto primitives. Submodules are imported by callers on demand (crypto.p256, crypto.ccm, ...),
# so an application pays RAM only for the primitives it uses.


class CryptoError(ValueError):
    """Base class for every crypto failure (bad key, bad length, failed check)."""


class InvalidSignature(CryptoError):
    pass


class InvalidTag(CryptoError):
    pass
