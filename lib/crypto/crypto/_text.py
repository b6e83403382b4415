# Texts of the crypto errors, loaded when one is shown (str(e)), so a device spends RAM on them only then.
# The modules raise CryptoError(n) (a small int: no interned name, no string on the heap); a text that is
# not a number here is shown as it is.
TEXTS = {
    1: "cryptolib AES key must be 16 or 32 bytes",  # aes key
    2: "AES block must be 16 bytes",  # aes block
    3: "CCM tag length must be 4, 6, ..., 16",  # ccm tag
    4: "CCM nonce must be 7..13 bytes",  # ccm nonce
    5: "CCM message too long for this nonce length",  # ccm long
    6: "CCM: ciphertext shorter than the tag",  # ccm short
    7: "CCM: authentication tag mismatch",  # ccm tag!
    8: "HKDF: length must be 0..8160",  # hkdf len
    9: "HKDF: PRK shorter than the hash",  # hkdf prk
    10: "key wrap: data must be a multiple of 8 bytes, at least 16",  # kw len
    11: "key unwrap: wrapped key must be a multiple of 8 bytes, at least 24",  # kuw len
    12: "key unwrap: integrity check failed (wrong KEK or corrupted data)",  # kuw check
    13: "malformed LMS public key",  # lms pub
    14: "HSS public key must be 60 bytes",  # hss len
    15: "HSS public key: levels must be 1..8",  # hss levels
    16: "malformed HSS public key",  # hss pub
    17: "P-256 point: only the uncompressed form (0x04) is supported",  # p256 form
    18: "P-256 point must be 65 or 64 bytes",  # p256 len
    19: "P-256 point is not on the curve",  # p256 curve
    20: "P-256 private key must be 32 bytes",  # p256 d len
    21: "P-256 private key out of range",  # p256 d
    22: "P-256 ECDH result is the point at infinity",  # p256 inf
    23: "random_bytes: bad length",  # rand len
    24: "this port has no os.urandom: no cryptographic random source",  # no random
    25: "xor_bytes: length mismatch",  # xor len
    26: "X25519 scalar must be 32 bytes",  # x25519 k
    27: "X25519 u-coordinate must be 32 bytes",  # x25519 u
    28: "X25519 result is all zero (small-order point)",  # x25519 0
    29: "CCM: the output buffer is too small",  # ccm out
}


def describe(args):
    if not args:
        return ""
    if len(args) == 1 and isinstance(args[0], (int, str)):
        return TEXTS.get(args[0], str(args[0]))
    return " ".join(str(a) for a in args)
