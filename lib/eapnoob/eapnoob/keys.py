# EAP-NOOB cryptography (RFC 9140 sections 3.3.2, 3.5, 5.1): the cryptosuites' ECDHE keys as JWK, the one-step
# KDF, the fingerprint Hoob, NoobId and the HMACs over 17-element JSON arrays of raw message values.
import json
from hashlib import sha256

from crypto import CryptoError
from crypto.kdf import HmacSha256, concat_kdf_sha256

from eapnoob.errors import E_INVALID_ECDHE_KEY, NoobError
from eapnoob.wire import b64d, b64e

SUITES = (1, 2)  # 1 = X25519 + SHA-256 (mandatory), 2 = P-256 + SHA-256
KDF_LEN = 320


def _bad_key(why):
    raise NoobError(E_INVALID_ECDHE_KEY, why)


def keypair(cs, rng):
    """(private, public) for cryptosuite cs from the random source rng(n) -> n bytes."""
    if cs == 1:
        from crypto import x25519
        priv = rng(32)
        return priv, x25519.public_key(priv)
    from crypto import p256
    while True:
        priv = rng(32)
        try:
            return priv, p256.public_key(priv)
        except CryptoError:  # out of [1, n-1]: draw again
            pass


def jwk(cs, pub):
    """The JWK we send (members in the order the RFC 9140 authors' implementations use)."""
    if cs == 1:
        return b'{"kty":"OKP","crv":"X25519","x":"' + b64e(pub) + b'"}'
    return (b'{"kty":"EC","crv":"P-256","x":"' + b64e(pub[1:33]) + b'","y":"' + b64e(pub[33:65]) + b'"}')


def parse_jwk(cs, raw):
    """A received JWK (raw JSON object) -> public key bytes; NoobError 1005 unless it is a valid key of cs."""
    try:
        key = json.loads(raw)
    except ValueError:
        _bad_key("JWK is not JSON")
    if type(key) is not dict:
        _bad_key("JWK is not an object")
    if cs == 1:
        if len(key) != 3 or key.get("kty") != "OKP" or key.get("crv") != "X25519":
            _bad_key("not an X25519 JWK")
        x = key.get("x")
        if type(x) is not str:
            _bad_key("JWK x missing")
        try:
            return b64d(x, 32)
        except NoobError:
            _bad_key("JWK x is not 32 bytes of base64url")
    if len(key) != 4 or key.get("kty") != "EC" or key.get("crv") != "P-256":
        _bad_key("not a P-256 JWK")
    x = key.get("x")
    y = key.get("y")
    if type(x) is not str or type(y) is not str:
        _bad_key("JWK x or y missing")
    try:
        pub = b"\x04" + b64d(x, 32) + b64d(y, 32)
    except NoobError:
        _bad_key("JWK x or y is not 32 bytes of base64url")
    from crypto import p256
    try:
        p256.decode_public_key(pub)
    except CryptoError:
        _bad_key("P-256 point not on the curve")
    return pub


def ecdh(cs, priv, pub):
    """The shared secret Z; NoobError 1005 for a key that gives none (X25519 small-order point)."""
    try:
        if cs == 1:
            from crypto import x25519
            return x25519.x25519(priv, pub)
        from crypto import p256
        return p256.ecdh(priv, pub)
    except CryptoError as e:
        _bad_key(str(e))


def kdf(z, party_u, party_v, supp_priv):
    """RFC 9140 section 3.5: NIST SP 800-56C one-step KDF, 320 bytes, FixedInfo = "EAP-NOOB" || Np || Ns ||
    SuppPrivInfo (Noob, Kz or nothing).

    The RFC's text gives SuppPrivInfo a one-byte Datalength prefix; the RFC authors' transcripts (and their
    hostapd server, and the ESP-IDF peer) hash Noob / Kz without it. We follow the transcripts: a prefix would
    give keys that no deployed implementation derives, and the authors' own script is the one reading of the
    text that has been interoperated."""
    return concat_kdf_sha256(z, KDF_LEN, b"EAP-NOOB" + party_u + party_v + supp_priv)


def array(first, parts):
    """The JSON array [first, parts...] that Hoob and the MACs cover: raw elements joined, no whitespace."""
    return b"[" + first + b"," + b",".join(parts) + b"]"


def hoob(direction, parts):
    """Hoob = H(Dir, Vers, ..., Noob)[:16]; parts are the 16 raw JSON elements after Dir."""
    return sha256(array(b"%d" % direction, parts)).digest()[:16]


def mac(key, first, parts):
    """HMAC-SHA256(key, [first, parts...]); first is b"2" for the server's MAC, b"1" for the peer's."""
    return HmacSha256(key).mac(array(first, parts))


def noob_ids(noob_b64):
    """The two NoobId spellings for a Noob (its base64url text), each 16 bytes: (RFC 9140, authors' script).

    RFC 9140 writes NoobId = H("NoobId", Noob) in the notation of its other hash inputs, which are JSON arrays:
    H(["NoobId","<Noob>"]). The authors' reference computes SHA-256("NoobId" || Noob) instead (the transcripts
    send that one). We send the RFC's spelling and recognise either when looking a NoobId up."""
    return (sha256(b'["NoobId","' + noob_b64 + b'"]').digest()[:16],
            sha256(b"NoobId" + noob_b64).digest()[:16])
