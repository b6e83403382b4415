# CoAP-EAP (RFC 9820): EAP carried over CoAP, the device (EAP peer, CoAP server) side in coapeap.device.
#
# The OSCORE Master Secret and Salt, as we read RFC 9820's key derivation:
#   Master Secret = HKDF-Expand(PRK = MSK, info = CS || "COAP-EAP OSCORE MASTER SECRET", 16)
#   Master Salt   = HKDF-Expand(PRK = MSK, info = CS || "COAP-EAP OSCORE MASTER SALT", 8)
# with the hash of the negotiated cipher suite (suite 0 = AES-CCM-16-64-128 + SHA-256 in IANA's CoAP-EAP Cipher
# Suites registry, the only one lib/oscore has), and CS the cipher-suite negotiation as it travelled: the CBOR array
# the controller offered (CS-C) followed by the CBOR array the device selected (CS-I), each "a CBOR array with the
# cipher suite value of 0" when not sent. Sender ID = RID-C and Recipient ID = RID-I on the device (IANA's CoAP-EAP
# Information Elements: RID-C is the Recipient ID of the EAP authenticator). The RFC's own derivation paragraph
# was not readable with the tools at hand: the default-CS rule is quoted by one public implementation, which also
# uses these labels, HKDF-Expand and 16/8 bytes (but hashes the bare suite integers); the other extracts before
# expanding and uses mixed-case labels. We keep the upper-case labels, HKDF-Expand only, and the arrays as sent,
# until the RFC's paragraph can be compared byte for byte.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

CONTENT_FORMAT = const(269)  # application/coap-eap
# CoAP-EAP_Info map keys
INFO_CS = const(1)
INFO_RID_C = const(2)
INFO_RID_I = const(3)
INFO_LIFETIME = const(4)
SUITE_CCM = const(0)  # AES-CCM-16-64-128 + SHA-256, the default
WELL_KNOWN = "/.well-known/coap-eap"


class CoapEapError(ValueError):
    """A malformed or unacceptable CoAP-EAP message."""


def oscore_secrets(msk, cs):
    """(Master Secret, Master Salt) from the MSK and the CS bytes (see above)."""
    from crypto.kdf import hkdf_expand
    return (hkdf_expand(msk, cs + b"COAP-EAP OSCORE MASTER SECRET", 16),
            hkdf_expand(msk, cs + b"COAP-EAP OSCORE MASTER SALT", 8))


def split(payload):
    """An EAP packet and the CoAP-EAP_Info map after it (None when absent). CoapEapError if malformed."""
    p = bytes(payload)
    if len(p) < 4:
        raise CoapEapError("EAP packet too short")
    n = (p[2] << 8) | p[3]
    if n < 4 or n > len(p):
        raise CoapEapError("EAP length")
    if n == len(p):
        return p, None
    import cbor
    try:
        info = cbor.loads(p[n:], max_depth=3)
    except ValueError:
        raise CoapEapError("CoAP-EAP_Info not CBOR")
    if type(info) is not dict:
        raise CoapEapError("CoAP-EAP_Info not a map")
    return p[:n], info
