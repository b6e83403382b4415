# COSE keys (RFC 9052 section 7, RFC 9053, RFC 8778 for HSS-LMS) and key sets with kid lookup.
# Secret material (d, k) never appears in repr() or in error messages. The numbers are private constants (no
# names on the heap); cose.algs has the public names of the algorithms, key types and curves.
import cbor

from cose import CoseError

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

# COSE_Key labels
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
# kty and crv (RFC 9053, RFC 8778)
_KTY_OKP = const(1)
_KTY_EC2 = const(2)
_KTY_SYMMETRIC = const(4)
_KTY_HSS_LMS = const(5)
_CRV_P256 = const(1)
_CRV_X25519 = const(4)
_CRV_ED25519 = const(6)
# algorithms (cose.algs)
_ES256 = const(-7)
_ESP256 = const(-9)
_EDDSA = const(-8)
_ED25519 = const(-19)
_HSS_LMS = const(-46)
_HMAC_256_64 = const(4)
_HMAC_256_256 = const(5)
_AES_CCM_16_64_128 = const(10)
_A128KW = const(-3)


def key_fits(alg, key):
    """Whether key's type (and alg, if the key names one) allows alg. ES256/ESP256 and EdDSA/Ed25519 pair."""
    ka = key.alg
    if alg == _ES256 or alg == _ESP256:
        return (ka is None or ka == _ES256 or ka == _ESP256) and key.kty == _KTY_EC2 and key.crv == _CRV_P256
    if alg == _EDDSA or alg == _ED25519:
        return (ka is None or ka == _EDDSA or ka == _ED25519) and key.kty == _KTY_OKP and key.crv == _CRV_ED25519
    if ka is not None and ka != alg:
        return False
    if alg == _HSS_LMS:
        return key.kty == _KTY_HSS_LMS
    if alg == _HMAC_256_64 or alg == _HMAC_256_256:
        return key.kty == _KTY_SYMMETRIC
    if alg == _AES_CCM_16_64_128 or alg == _A128KW:
        return key.kty == _KTY_SYMMETRIC and len(key.k) == 16
    return False


def _b(v, what):
    if v is None:
        return None
    if not isinstance(v, (bytes, bytearray, memoryview)):
        raise CoseError(23, what)  # COSE_Key %s must be a bstr
    return bytes(v)


class CoseKey:
    """One key: kty plus the parameters of its type. Build it with the class methods."""

    def __init__(self, kty, alg=None, kid=None, crv=None, x=None, y=None, d=None, k=None, pub=None,
                 base_iv=None):
        self.kty = kty
        self.alg = alg
        self.kid = _b(kid, "kid")
        self.crv = crv
        self.x = _b(x, "x")
        self.y = _b(y, "y")
        self.d = _b(d, "d")
        self.k = _b(k, "k")
        self.pub = _b(pub, "pub")
        self.base_iv = _b(base_iv, "Base IV")
        if kty == _KTY_EC2:
            if self.crv != _CRV_P256:
                raise CoseError(24, self.crv)  # unsupported EC2 curve %r
            if self.d is not None and len(self.d) != 32:
                raise CoseError(25)  # P-256 private key must be 32 bytes
            if self.x is None and self.d is None:
                raise CoseError(26)  # EC2 key without x or d
            if self.x is not None:
                if len(self.x) != 32 or self.y is None or len(self.y) != 32:
                    raise CoseError(27)  # P-256 x and y must be 32 bytes each (compressed points not supported)
        elif kty == _KTY_OKP:
            if self.crv not in (_CRV_ED25519, _CRV_X25519):
                raise CoseError(28, self.crv)  # unsupported OKP curve %r
            if self.x is None and self.d is None:
                raise CoseError(29)  # OKP key without x or d
            if (self.x is not None and len(self.x) != 32) or (self.d is not None and len(self.d) != 32):
                raise CoseError(30)  # OKP keys are 32 bytes
        elif kty == _KTY_SYMMETRIC:
            if not self.k:
                raise CoseError(31)  # symmetric key without k
        elif kty == _KTY_HSS_LMS:
            if self.pub is None or len(self.pub) != 60:
                raise CoseError(32)  # HSS-LMS public key must be 60 bytes
        else:
            raise CoseError(33, kty)  # unsupported key type %r

    def __repr__(self):  # secret parts show as "secret=hidden"
        from cose._text import key_repr
        return key_repr(self)

    @property
    def is_private(self):
        return self.d is not None or self.k is not None

    def public_bytes(self):
        """Raw public key as the primitives take it: P-256 65-byte uncompressed, Ed25519 32, HSS 60."""
        if self.kty == _KTY_EC2:
            if self.x is None:
                from crypto import p256
                pt = p256.public_key(self.d)
                self.x, self.y = pt[1:33], pt[33:65]
            return b"\x04" + self.x + self.y
        if self.kty == _KTY_OKP:
            if self.x is None:
                if self.crv == _CRV_ED25519:
                    from crypto import ed25519
                    self.x = ed25519.public_key(self.d)
                else:
                    from crypto import x25519
                    self.x = x25519.x25519(self.d, b"\x09" + bytes(31))
            return self.x
        if self.kty == _KTY_HSS_LMS:
            return self.pub
        raise CoseError(34)  # symmetric keys have no public part

    def public_key(self):
        """The same key without its secret parts."""
        from cose._create import public_key
        return public_key(self)

    def to_map(self, private=False):
        from cose._create import key_map
        return key_map(self, private)

    def encode(self, private=False):
        return cbor.dumps(self.to_map(private), canonical=True)

    # constructors

    @classmethod
    def from_map(cls, m):
        if not isinstance(m, dict):
            raise CoseError(35)  # COSE_Key must be a map
        kty = m.get(_KTY)
        if not isinstance(kty, int):
            raise CoseError(36)  # COSE_Key kty missing or not an int (text kty not supported)
        alg = m.get(_ALG)
        if alg is not None and not isinstance(alg, (int, str)):
            raise CoseError(37)  # COSE_Key alg must be int or tstr
        kid = m.get(_KID)
        base_iv = m.get(_BASE_IV)
        if kty in (_KTY_EC2, _KTY_OKP):
            y = m.get(_Y)
            if isinstance(y, bool):
                raise CoseError(38)  # compressed EC2 points are not supported
            return cls(kty, alg, kid, m.get(_CRV), x=m.get(_X), y=y, d=m.get(_D), base_iv=base_iv)
        if kty == _KTY_SYMMETRIC:
            return cls(kty, alg, kid, k=m.get(_K), base_iv=base_iv)
        if kty == _KTY_HSS_LMS:
            return cls(kty, alg, kid, pub=m.get(_PUB))
        raise CoseError(33, kty)  # unsupported key type %r

    @classmethod
    def decode(cls, data):
        """A COSE_Key from its CBOR encoding."""
        try:
            m = cbor.loads(data, unique_keys=True)
        except cbor.CBORDecodeError as e:
            raise CoseError(39, e)  # COSE_Key is not valid CBOR: %s
        return cls.from_map(m)

    @classmethod
    def from_raw(cls, alg, raw, kid=None, private=False):
        """A key for alg from raw bytes: P-256 65-byte uncompressed (or 64-byte x||y) public or 32-byte private;
        Ed25519 32-byte public or (private=True) seed; HSS-LMS 60-byte public; symmetric algs the key itself."""
        from cose._create import key_from_raw
        return key_from_raw(cls, alg, raw, kid, private)

    @classmethod
    def symmetric(cls, k, alg=None, kid=None, base_iv=None):
        return cls(_KTY_SYMMETRIC, alg, kid, k=k, base_iv=base_iv)


class KeySet:
    """Keys to try when verifying: looked up by the message's kid, then by algorithm."""

    def __init__(self, keys=()):
        self.keys = []
        for k in keys:
            self.add(k)

    def add(self, key):
        if not isinstance(key, CoseKey):
            raise CoseError(40)  # KeySet holds CoseKey objects
        self.keys.append(key)

    def candidates(self, kid, alg):
        """Keys that fit alg: those with this kid when the message names one, else all that fit."""
        try:
            return candidates(self.keys, kid, alg)
        except CoseError:  # none
            return []


def candidates(keys, kid, alg):
    """Normalise a CoseKey, KeySet or list of keys to the keys worth trying; CoseError if none. The keys are
    filtered as they are: no KeySet is made per message."""
    if isinstance(keys, CoseKey):
        keys = (keys,)
    elif isinstance(keys, KeySet):
        keys = keys.keys
    elif not isinstance(keys, (list, tuple)):
        raise CoseError(41)  # expected a CoseKey, a KeySet or a list of keys
    exact = []
    wildcard = []  # keys without a kid fit any message, after the ones whose kid matches
    for key in keys:
        if not isinstance(key, CoseKey):
            raise CoseError(40)  # KeySet holds CoseKey objects
        if not key_fits(alg, key):
            continue
        if key.kid is None:
            wildcard.append(key)
        elif kid is None or key.kid == bytes(kid):
            exact.append(key)
    found = exact + wildcard if exact else wildcard
    if not found:
        if kid is not None:
            raise CoseError(42, bytes(kid).hex(), alg)  # no key with kid %s for %s
        raise CoseError(43, alg)  # no key for %s
    return found
