# Class I options (integrity-protected outer options, RFC 8613 sections 4.1 and 5.4): RFC 8613 defines none, so
# this is loaded only for a context made with class_i=(...).
from coap.msg import Message

from oscore.derive import bstr

_ENC0 = b"\x83\x68Encrypt0\x40"


def encode(opts):
    """The Class I options as CoAP would encode them (delta from 0): a token-less message's bytes after the
    header."""
    m = Message()
    m.opts = opts
    return bytes(m.encode()[4:])


def of(opts, ci):
    """The AAD bytes of the options in opts whose numbers are in ci."""
    return encode([x for x in opts if x[0] in ci])


def aad(kid, piv, class_i):
    """The Enc_structure with Class I options (the general CBOR heads)."""
    arr = b"".join((b"\x85\x01\x81\x0a", bstr(kid), bstr(piv), bstr(class_i)))
    return _ENC0 + bstr(arr)


def outer(msg, ci):
    """The outer options a receiver keeps (Class U and the Class I numbers ci) and the Class I bytes for the AAD."""
    from oscore.transform import OPTION_CLASS
    keep = []
    cis = []
    for n, v in msg.items():
        if n < 40 and OPTION_CLASS[n] == 1:
            keep.append((n, v))
        elif n in ci:
            keep.append((n, v))
            cis.append((n, v))
    return keep, encode(cis) if cis else b""
