# Texts of the crypto errors, loaded when one is shown (str(e)), so a device spends RAM on them only then.
# The modules raise CryptoError(key); a text that is not a key here is shown as it is.
TEXTS = {
    "aes key": "cryptolib AES key must be 16 or 32 bytes",
    "aes block": "AES block must be 16 bytes",
    "ccm tag": "CCM tag length must be 4, 6, ..., 16",
    "ccm nonce": "CCM nonce must be 7..13 bytes",
    "ccm long": "CCM message too long for this nonce length",
    "ccm short": "CCM: ciphertext shorter than the tag",
    "ccm tag!": "CCM: authentication tag mismatch",
    "hkdf len": "HKDF: length must be 0..8160",
    "hkdf prk": "HKDF: PRK shorter than the hash",
    "kw len": "key wrap: data must be a multiple of 8 bytes, at least 16",
    "kuw len": "key unwrap: wrapped key must be a multiple of 8 bytes, at least 24",
    "kuw check": "key unwrap: integrity check failed (wrong KEK or corrupted data)",
    "lms pub": "malformed LMS public key",
    "hss len": "HSS public key must be 60 bytes",
    "hss levels": "HSS public key: levels must be 1..8",
    "hss pub": "malformed HSS public key",
    "p256 form": "P-256 point: only the uncompressed form (0x04) is supported",
    "p256 len": "P-256 point must be 65 or 64 bytes",
    "p256 curve": "P-256 point is not on the curve",
    "p256 d len": "P-256 private key must be 32 bytes",
    "p256 d": "P-256 private key out of range",
    "p256 inf": "P-256 ECDH result is the point at infinity",
    "rand len": "random_bytes: bad length",
    "no random": "this port has no os.urandom: no cryptographic random source",
    "xor len": "xor_bytes: length mismatch",
    "x25519 k": "X25519 scalar must be 32 bytes",
    "x25519 u": "X25519 u-coordinate must be 32 bytes",
    "x25519 0": "X25519 result is all zero (small-order point)",
}


def describe(args):
    if not args:
        return ""
    if len(args) == 1 and isinstance(args[0], str):
        return TEXTS.get(args[0], args[0])
    return " ".join(str(a) for a in args)
