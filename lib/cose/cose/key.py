# COSE keys (RFC 9052 section 7, RFC 9053, RFC 8778 for HSS-LMS) and key sets with kid lookup.
# Secret material (d, k) never appears in repr() or in error messages.
import cbor

from cose import CoseError
from cose import algs as _algs

# COSE_Key labels
KTY = 1
KID = 2
ALG = 3
KEY_OPS = 4
BASE_IV = 5
CRV = -1  # EC2 / OKP
X = -2
Y = -3
D = -4
K = -1  # Symmetric
PUB = -1  # HSS-LMS


def _b(v, what):
    if v is None:
        return None
    if not isinstance(v, (bytes, bytearray, memoryview)):
        raise CoseError("key bstr", what)
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
        self._check()

    def _check(self):
        kty = self.kty
        if kty == _algs.KTY_EC2:
            if self.crv != _algs.CRV_P256:
                raise CoseError("ec2 curve", self.crv)
            if self.d is not None and len(self.d) != 32:
                raise CoseError("p256 d")
            if self.x is None and self.d is None:
                raise CoseError("ec2 no x")
            if self.x is not None:
                if len(self.x) != 32 or self.y is None or len(self.y) != 32:
                    raise CoseError("p256 xy")
        elif kty == _algs.KTY_OKP:
            if self.crv not in (_algs.CRV_ED25519, _algs.CRV_X25519):
                raise CoseError("okp curve", self.crv)
            if self.x is None and self.d is None:
                raise CoseError("okp no x")
            if (self.x is not None and len(self.x) != 32) or (self.d is not None and len(self.d) != 32):
                raise CoseError("okp len")
        elif kty == _algs.KTY_SYMMETRIC:
            if not self.k:
                raise CoseError("sym no k")
        elif kty == _algs.KTY_HSS_LMS:
            if self.pub is None or len(self.pub) != 60:
                raise CoseError("hss pub")
        else:
            raise CoseError("kty", kty)

    def __repr__(self):  # secret parts show as "secret=hidden"
        from cose._text import key_repr
        return key_repr(self)

    @property
    def is_private(self):
        return self.d is not None or self.k is not None

    def public_bytes(self):
        """Raw public key as the primitives take it: P-256 65-byte uncompressed, Ed25519 32, HSS 60."""
        if self.kty == _algs.KTY_EC2:
            if self.x is None:
                from crypto import p256
                pt = p256.public_key(self.d)
                self.x, self.y = pt[1:33], pt[33:65]
            return b"\x04" + self.x + self.y
        if self.kty == _algs.KTY_OKP:
            if self.x is None:
                if self.crv == _algs.CRV_ED25519:
                    from crypto import ed25519
                    self.x = ed25519.public_key(self.d)
                else:
                    from crypto import x25519
                    self.x = x25519.x25519(self.d, b"\x09" + bytes(31))
            return self.x
        if self.kty == _algs.KTY_HSS_LMS:
            return self.pub
        raise CoseError("sym pub")

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
            raise CoseError("key map")
        kty = m.get(KTY)
        if not isinstance(kty, int):
            raise CoseError("key kty")
        alg = m.get(ALG)
        if alg is not None and not isinstance(alg, (int, str)):
            raise CoseError("key alg")
        kid = m.get(KID)
        base_iv = m.get(BASE_IV)
        if kty in (_algs.KTY_EC2, _algs.KTY_OKP):
            y = m.get(Y)
            if isinstance(y, bool):
                raise CoseError("compressed")
            return cls(kty, alg, kid, m.get(CRV), x=m.get(X), y=y, d=m.get(D), base_iv=base_iv)
        if kty == _algs.KTY_SYMMETRIC:
            return cls(kty, alg, kid, k=m.get(K), base_iv=base_iv)
        if kty == _algs.KTY_HSS_LMS:
            return cls(kty, alg, kid, pub=m.get(PUB))
        raise CoseError("kty", kty)

    @classmethod
    def decode(cls, data):
        """A COSE_Key from its CBOR encoding."""
        try:
            m = cbor.loads(data, unique_keys=True)
        except cbor.CBORDecodeError as e:
            raise CoseError("key cbor", e)
        return cls.from_map(m)

    @classmethod
    def from_raw(cls, alg, raw, kid=None, private=False):
        """A key for alg from raw bytes: P-256 65-byte uncompressed (or 64-byte x||y) public or 32-byte private;
        Ed25519 32-byte public or (private=True) seed; HSS-LMS 60-byte public; symmetric algs the key itself."""
        from cose._create import key_from_raw
        return key_from_raw(cls, alg, raw, kid, private)

    @classmethod
    def symmetric(cls, k, alg=None, kid=None, base_iv=None):
        return cls(_algs.KTY_SYMMETRIC, alg, kid, k=k, base_iv=base_iv)


class KeySet:
    """Keys to try when verifying: looked up by the message's kid, then by algorithm."""

    def __init__(self, keys=()):
        self.keys = []
        for k in keys:
            self.add(k)

    def add(self, key):
        if not isinstance(key, CoseKey):
            raise CoseError("keyset")
        self.keys.append(key)

    def __len__(self):
        return len(self.keys)

    def __repr__(self):
        return "<KeySet %d keys>" % len(self.keys)

    def candidates(self, kid, alg):
        """Keys that fit alg: those with this kid when the message names one, else all that fit."""
        exact = []
        wildcard = []  # keys without a kid fit any message, after the ones whose kid matches
        for key in self.keys:
            if not _algs.key_fits(alg, key):
                continue
            if key.kid is None:
                wildcard.append(key)
            elif kid is None or key.kid == bytes(kid):
                exact.append(key)
        return exact + wildcard


def candidates(keys, kid, alg):
    """Normalise a CoseKey, KeySet or list of keys to the keys worth trying; CoseError if none."""
    if isinstance(keys, CoseKey):
        keys = KeySet((keys,))
    elif isinstance(keys, (list, tuple)):
        keys = KeySet(keys)
    elif not isinstance(keys, KeySet):
        raise CoseError("keys type")
    found = keys.candidates(kid, alg)
    if not found:
        if kid is not None:
            raise CoseError("no kid key", bytes(kid).hex(), alg)
        raise CoseError("no key", alg)
    return found
