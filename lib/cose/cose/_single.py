# What COSE_Sign1 and COSE_Mac0 share: four-element structures [protected, unprotected, payload, check]
# whose check value covers a [context, protected, external_aad, payload] array. Creating them is in cose._create.
import cbor

from cose import CoseError
from cose import headers as _h


def to_be_checked(context, protected_bytes, external_aad, payload):
    return cbor.dumps([context, protected_bytes, bytes(external_aad), payload])


def decode(msg, tag, check_name):
    """(Headers, payload or None, check value) of a message given as bytes, decoded array or cbor.Tag."""
    arr = _h.unwrap(msg, tag, 4)
    hdr = _h.Headers(arr[0], arr[1])
    _h.check_bstr_or_nil(arr[2], "payload")
    if not isinstance(arr[3], (bytes, bytearray)):
        raise CoseError(44, check_name)  # %s must be a bstr
    return hdr, arr[2], arr[3]


def payload_for(body, payload):
    """The payload to check: the message's own, or the detached one the caller supplies (never both)."""
    if body is None:
        if payload is None:
            raise CoseError(45)  # detached payload: pass payload=
        return bytes(payload)
    if payload is not None and bytes(payload) != body:
        raise CoseError(46)  # payload given for a message that carries its own
    return body
