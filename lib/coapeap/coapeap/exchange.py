# The CoAP-EAP device's EAP resources (RFC 9820, steps 2-4 of coapeap.device): the POST handler with the
# retransmission answer, the cipher-suite and RID negotiation of the first POST, the OSCORE context derived from
# the MSK, and EAP-Success / EAP-Failure. Loaded by Device with the first POST of a conversation.
import cbor
from coap.msg import Message
from coapeap import (CONTENT_FORMAT, INFO_CS, INFO_LIFETIME, INFO_RID_C, INFO_RID_I, SUITE_CCM, CoapEapError,
                     oscore_secrets, split)
from coapeap.device import SESSION

try:
    from micropython import const
    from time import time as _now
except ImportError:  # CPython
    from time import time as _now

    def const(x):
        return x

_CREATED = const(65)
_CHANGED = const(68)
_BAD_REQUEST = const(128)
_UNAUTHORIZED = const(129)
_NOT_FOUND = const(132)
_NOT_ACCEPTABLE = const(134)
_LOCATION_PATH = const(8)
_CONTENT_FORMAT = const(12)
_EAP_SUCCESS = const(3)
_EAP_FAILURE = const(4)
_NO_SUITE = "no common cipher suite"  # answered 4.06 Not Acceptable; other malformed Info 4.00


def _answer(code, location=None, payload=b""):
    m = Message(code=code, payload=payload)
    if location:
        for seg in location:
            m.add(_LOCATION_PATH, seg)
        m.add(_CONTENT_FORMAT, CONTENT_FORMAT)
    return m


def post(dev, req):
    """A POST to one of the device's EAP resources -> the CoAP response."""
    path = req.path()
    body = bytes(req.payload)
    last = dev.last
    if last is not None and last[0] == path:  # the controller did not get our answer: the same again
        if last[1] == body:
            return _answer(_CREATED, last[2], last[3])
        return _answer(_BAD_REQUEST, payload=b"not the request this resource answered")
    if dev.step is None or dev.step[0] != path:
        return _answer(_NOT_FOUND)
    first = dev.step[1]
    try:
        eap, info = split(body)
        out_info = _negotiate(dev, info) if first else None
    except CoapEapError as e:
        return _answer(_NOT_ACCEPTABLE if str(e) == _NO_SUITE else _BAD_REQUEST, payload=str(e).encode())
    if eap[0] == _EAP_SUCCESS or eap[0] == _EAP_FAILURE:
        return _end(dev, req, eap, info)
    peer = dev.peer
    had = peer.keys
    resp = peer.receive(eap, _now())
    if peer.keys is not None and peer.keys is not had:
        _derive(dev, peer.keys[0])
    seg = "%x.%s" % (dev.session, "".join("%02x" % b for b in dev.rng(3)))
    payload = resp or b""
    if out_info is not None:
        payload += cbor.dumps(out_info)
    loc = ("eap", seg)
    dev.last = (path, body, loc, payload)
    dev.step = ("/eap/" + seg, False)
    dev.route_step(dev.step[0])
    dev.due = _now() + 3 * dev.retry  # a conversation that goes quiet is announced again
    if dev.on_state:
        dev.on_state(dev)
    return _answer(_CREATED, loc, payload)


def _negotiate(dev, info):
    """The first POST's CoAP-EAP_Info -> our answer's; sets the device's CS, RID-C, RID-I."""
    info = info or {}
    offered = info.get(INFO_CS, [SUITE_CCM])
    if type(offered) is not list or not offered:
        raise CoapEapError("cipher suites not an array")
    chosen = None
    for cs in offered:
        if cs in dev.suites:
            chosen = cs
            break
    if chosen is None:
        raise CoapEapError(_NO_SUITE)
    rid_c = info.get(INFO_RID_C)
    if type(rid_c) is not bytes or len(rid_c) > 7:
        raise CoapEapError("RID-C missing or longer than 7 bytes")
    rid_i = dev.rng(1)
    while rid_i == rid_c or (dev.context is not None and rid_i == dev.context.recipient_id):
        rid_i = dev.rng(1)
    dev.cs = cbor.dumps(offered) + cbor.dumps([chosen])
    dev.rid_c = rid_c
    dev.rid_i = rid_i
    return {INFO_CS: [chosen], INFO_RID_I: rid_i}


def _derive(dev, msk):
    if dev.cs is None:  # no negotiation happened (a conversation that started before a reboot)
        return
    secret, salt = oscore_secrets(msk, dev.cs)
    dev.secrets = (secret, salt, dev.rid_c, dev.rid_i)
    unload = getattr(dev.peer, "unload", None)
    if unload:  # the EAP method's bootstrap code gives its RAM to OSCORE
        unload()
    dev.pending = dev.make_context(secret, salt, dev.rid_c, dev.rid_i)
    dev.install()


def _end(dev, req, eap, info):
    if eap[0] == _EAP_FAILURE:  # (before OSCORE's transform is imported: a failure needs none of it)
        dev.peer.receive(eap, _now())
        dev.step = None
        dev.pending = None
        dev.due = _now() + (getattr(dev.peer, "sleep_time", None) or dev.retry)
        dev.install()
        return _answer(_CHANGED)
    from oscore.transform import context_of
    pend = dev.pending
    if pend is None or context_of(req) is not pend:
        return _answer(_UNAUTHORIZED, payload=b"EAP-Success must come through the new OSCORE context")
    lifetime = (info or {}).get(INFO_LIFETIME, 0)
    if type(lifetime) is not int or lifetime < 0:
        lifetime = 0
    dev.peer.receive(eap, _now())
    secret, salt, rid_c, rid_i = dev.secrets
    dev.expires = int(_now()) + lifetime if lifetime else 0
    dev.store.put(SESSION, cbor.dumps([secret, salt, rid_c, rid_i, dev.expires]))
    old = dev.context
    if old is not None and old is not pend:
        dev.store.delete(old.name)
    dev.context = pend
    dev.pending = None
    dev.step = None
    dev.secrets = None
    dev.due = dev.rekey_time()
    dev.install()
    return _answer(_CHANGED)
