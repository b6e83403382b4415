# What COSE_Sign1 and COSE_Mac0 share: four-element structures [protected, unprotected, payload, check]
# whose check value covers a [context, protected, external_aad, payload] array. Creating them is in cose._create.
import cbor

from cose import CoseError
from cose import headers as _h


def to_be_checked(context, protected_bytes, external_aad, payload):
    return cbor.dumps([context, protected_bytes, bytes(external_aad), payload])


def encode(tag, context, compute, key, payload, alg, protected, unprotected, external_aad, detached, tagged,
           include_kid):
    """Build the structure; compute(alg, key, data) gives the signature or MAC over the context array."""
    alg = alg if alg is not None else key.alg
    if alg is None:
        raise CoseError("no algorithm: give alg or a key that names one")
    p, u = _h.build(alg, protected, unprotected, key.kid if include_kid else None)
    pb = _h.encode_protected(p)
    payload = bytes(payload)
    check = compute(alg, key, to_be_checked(context, pb, external_aad, payload))
    arr = [pb, u, None if detached else payload, check]
    return cbor.dumps(cbor.Tag(tag, arr) if tagged else arr)


def decode(msg, tag, check_name):
    """(Headers, payload or None, check value) of a message given as bytes, decoded array or cbor.Tag."""
    arr = _h.unwrap(msg, tag, 4)
    hdr = _h.Headers(arr[0], arr[1])
    _h.check_bstr_or_nil(arr[2], "payload")
    if not isinstance(arr[3], (bytes, bytearray)):
        raise CoseError("%s must be a bstr" % check_name)
    return hdr, arr[2], arr[3]


def payload_for(body, payload):
    """The payload to check: the message's own, or the detached one the caller supplies (never both)."""
    if body is None:
        if payload is None:
            raise CoseError("detached payload: pass payload=")
        return bytes(payload)
    if payload is not None and bytes(payload) != body:
        raise CoseError("payload given for a message that carries its own")
    return body
