# The CoAP-EAP device (RFC 9820): the EAP peer in the CoAP server role on the shared endpoint.
#
#   dev = Device(ep, peer, controller=("192.0.2.1", 5683), store=FileStore("/coapeap"), require=("/app/",))
#   await dev.run()            # announce, answer the controller, keep the session, re-key before it ends
#
# 1. The device announces itself: NON POST /.well-known/coap-eap with No-Response, the payload naming its first
#    EAP resource (a fresh path per conversation).
# 2. The controller POSTs each EAP request to the resource the device named; the device answers 2.01 Created with
#    the EAP response and a Location-Path naming the next resource. It keeps the last request and its answer,
#    so a retransmission (a new CoAP message with the same EAP request) gets the same answer without giving the
#    EAP peer the packet twice.
# 3. The first POST carries the CoAP-EAP_Info map {1: cipher suites offered, 2: RID-C}; the device's answer
#    carries {1: [the suite it selected], 3: RID-I}.
# 4. When the EAP method has its MSK (after EAP-NOOB's last response), the device derives the OSCORE context
#    (coapeap.oscore_secrets; Sender ID = RID-C, Recipient ID = RID-I) and accepts it on the endpoint. The EAP-
#    Success POST must come through that context (with {4: Session-Lifetime}); the device answers 2.04 Changed,
#    keeps the session in the store, and from then on the resources in `require` answer only through OSCORE.
# 5. Before the lifetime ends (or on dev.rekey()) the device announces again and the controller runs EAP-NOOB
#    Reconnect; the new context replaces the old one at the next EAP-Success.
import asyncio

from coap.msg import Message
from coapeap import (CONTENT_FORMAT, INFO_CS, INFO_LIFETIME, INFO_RID_C, INFO_RID_I, SUITE_CCM, WELL_KNOWN,
                     CoapEapError, oscore_secrets, split)

try:
    from micropython import const
    from time import time as _now
except ImportError:  # CPython
    from time import time as _now

    def const(x):
        return x

_NON = const(1)
_POST = const(2)
_CREATED = const(65)
_CHANGED = const(68)
_BAD_REQUEST = const(128)
_UNAUTHORIZED = const(129)
_NOT_FOUND = const(132)
_NOT_ACCEPTABLE = const(134)
_LOCATION_PATH = const(8)
_CONTENT_FORMAT = const(12)
_NO_RESPONSE = const(258)
_EAP_SUCCESS = const(3)
_EAP_FAILURE = const(4)
_NO_SUITE = "no common cipher suite"  # answered 4.06 Not Acceptable; other malformed Info 4.00
SESSION = "coapeap"  # store name of the session record
SEQUENCE = "coapeap-seq"  # store name of the OSCORE sender sequence bound


def _cbor():
    import cbor
    return cbor


class Device:
    def __init__(self, ep, peer, controller, store, suites=(SUITE_CCM,), require=(), retry=10, margin=0.1,
                 rng=None, on_state=None):
        """ep: the shared coap.endpoint.Endpoint; peer: the EAP method (eapnoob.peer.Peer or anything with
        receive(pkt, now) and keys); controller: its address; store: a store.FileStore for the session;
        suites: the CoAP-EAP cipher suites we accept (lib/oscore has 0); require: paths only OSCORE may reach once
        registered; retry: seconds between announcements while nobody answers; margin: the fraction of the
        session lifetime left when the device re-keys; on_state(device): called after every change."""
        self.ep = ep
        self.peer = peer
        self.controller = controller
        self.store = store
        self.suites = suites
        self.require = require
        self.retry = retry
        self.margin = margin
        if rng is None:
            from crypto.util import random_bytes as rng
        self.rng = rng
        self.on_state = on_state
        self.context = None  # the OSCORE context of the session
        self.expires = 0  # when the session ends (time.time())
        self.pending = None  # the context derived from a fresh MSK, until EAP-Success arrives through it
        self.session = 0  # conversations announced
        self.step = None  # (path, first) the controller is to POST to next
        self.last = None  # (path, request payload, Location segments, response payload)
        self.cs = None  # CS bytes of this conversation
        self.rid_c = None
        self.rid_i = None
        self.wake = asyncio.Event()
        self.due = 0  # when to announce next (time.time()), None: not before kick()
        self._secrets = None
        self._restore()
        self._install()

    # ---- session record --------------------------------------------------------------------------------

    def _restore(self):
        blob = self.store.get(SESSION)
        if not blob:
            return
        try:
            secret, salt, rid_c, rid_i, expires = _cbor().loads(blob)
            self.context = self._context(secret, salt, rid_c, rid_i, fresh=False)
            self.expires = expires
            self.due = self._rekey_time()
        except Exception:  # an unreadable record is no session: bootstrap again
            self.store.delete(SESSION)
            self.context = None

    def _context(self, secret, salt, rid_c, rid_i, fresh=True):
        # The sequence number bound is kept per Recipient ID: a re-key's new context (a different RID-I) never
        # overwrites the bound of the context still in use until its EAP-Success.
        from oscore.context import Context
        name = SEQUENCE + "".join("%02x" % b for b in rid_i)
        if fresh:
            self.store.delete(name)  # a new Master Secret starts at sequence number 0
        return Context(secret, salt, rid_c, rid_i, store=self.store, name=name)

    def _rekey_time(self):
        if not self.expires:
            return None
        now = _now()
        return now + (self.expires - now) * (1 - self.margin) if self.expires > now else 0

    def _install(self):
        ctxs = [c for c in (self.pending, self.context) if c is not None]
        if ctxs:
            from oscore.transform import Oscore
            self.ep.transform = Oscore(contexts=ctxs, require=self.require if self.context else ())
        else:
            self.ep.transform = None
        if self.on_state:
            self.on_state(self)

    @property
    def registered(self):
        return self.context is not None

    # ---- announcing ------------------------------------------------------------------------------------

    def announce(self):
        """The trigger: NON POST /.well-known/coap-eap, No-Response (all classes), naming our first resource."""
        self.session += 1
        path = "/eap/%x.%s" % (self.session, "".join("%02x" % b for b in self.rng(2)))
        self.step = (path, True)
        self.last = None
        self._route(path)
        m = Message(_NON, _POST, self.ep.next_mid(), self.rng(4), path.encode()).set_path(WELL_KNOWN)
        m.add(_NO_RESPONSE, b"\x1a")  # RFC 7967: suppress 2.xx, 4.xx and 5.xx
        self.ep.t.send(m.encode(), self.controller)

    def _route(self, path):
        res = self.ep.resources
        if res:  # only the current resource and the one before it (for retransmissions) are served
            for p in [p for p in res if p.startswith("/eap/")]:
                if p != path and (self.last is None or p != self.last[0]):
                    del res[p]
        self.ep.route(path, post=self._post, max_body=1400)

    async def run(self):
        """Announce when due: at start, `retry` seconds after a conversation went quiet, SleepTime after an
        EAP-Failure (Waiting for the OOB step), at the lifetime's margin once registered, or at once on kick()."""
        while True:
            now = _now()
            if self.due is not None and now >= self.due:
                self.due = now + self.retry
                try:
                    self.announce()
                except OSError:  # no route yet: try again later
                    pass
            self.wake.clear()
            wait = self.retry if self.due is None else max(0, self.due - now)
            try:
                await asyncio.wait_for(self.wake.wait(), min(wait, self.retry))
            except asyncio.TimeoutError:
                pass

    def kick(self):
        """Announce now (the user entered the OOB message, or the application wants new keys)."""
        self.due = 0
        self.wake.set()

    rekey = kick  # once registered, a new conversation is an EAP-NOOB Reconnect

    # ---- the EAP resources -----------------------------------------------------------------------------

    def _answer(self, code, location=None, payload=b""):
        m = Message(code=code, payload=payload)
        if location:
            for seg in location:
                m.add(_LOCATION_PATH, seg)
            m.add(_CONTENT_FORMAT, CONTENT_FORMAT)
        return m

    def _post(self, req):
        path = req.path()
        body = bytes(req.payload)
        last = self.last
        if last is not None and last[0] == path:  # the controller did not get our answer: the same again
            if last[1] == body:
                return self._answer(_CREATED, last[2], last[3])
            return self._answer(_BAD_REQUEST, payload=b"not the request this resource answered")
        if self.step is None or self.step[0] != path:
            return self._answer(_NOT_FOUND)
        first = self.step[1]
        try:
            eap, info = split(body)
            out_info = self._negotiate(info) if first else None
        except CoapEapError as e:
            return self._answer(_NOT_ACCEPTABLE if str(e) == _NO_SUITE else _BAD_REQUEST, payload=str(e).encode())
        if eap[0] == _EAP_SUCCESS or eap[0] == _EAP_FAILURE:
            return self._end(req, eap, info)
        had = self.peer.keys
        resp = self.peer.receive(eap, _now())
        if self.peer.keys is not None and self.peer.keys is not had:
            self._derive(self.peer.keys[0])
        seg = "%x.%s" % (self.session, "".join("%02x" % b for b in self.rng(3)))
        payload = resp or b""
        if out_info is not None:
            payload += _cbor().dumps(out_info)
        loc = ("eap", seg)
        self.last = (path, body, loc, payload)
        self.step = ("/eap/" + seg, False)
        self._route(self.step[0])
        self.due = _now() + 3 * self.retry  # a conversation that goes quiet is announced again
        if self.on_state:
            self.on_state(self)
        return self._answer(_CREATED, loc, payload)

    def _negotiate(self, info):
        """The first POST's CoAP-EAP_Info -> our answer's; sets CS, RID-C, RID-I."""
        info = info or {}
        offered = info.get(INFO_CS, [SUITE_CCM])
        if type(offered) is not list or not offered:
            raise CoapEapError("cipher suites not an array")
        chosen = None
        for cs in offered:
            if cs in self.suites:
                chosen = cs
                break
        if chosen is None:
            raise CoapEapError(_NO_SUITE)
        rid_c = info.get(INFO_RID_C)
        if type(rid_c) is not bytes or len(rid_c) > 7:
            raise CoapEapError("RID-C missing or longer than 7 bytes")
        rid_i = self.rng(1)
        while rid_i == rid_c or (self.context is not None and rid_i == self.context.recipient_id):
            rid_i = self.rng(1)
        cbor = _cbor()
        self.cs = cbor.dumps(offered) + cbor.dumps([chosen])
        self.rid_c = rid_c
        self.rid_i = rid_i
        return {INFO_CS: [chosen], INFO_RID_I: rid_i}

    def _derive(self, msk):
        if self.cs is None:  # no negotiation happened (a conversation that started before a reboot)
            return
        secret, salt = oscore_secrets(msk, self.cs)
        self._secrets = (secret, salt, self.rid_c, self.rid_i)
        unload = getattr(self.peer, "unload", None)
        if unload:  # the EAP method's bootstrap code gives its RAM to OSCORE
            unload()
        self.pending = self._context(secret, salt, self.rid_c, self.rid_i)
        self._install()

    def _end(self, req, eap, info):
        from oscore.transform import context_of
        if eap[0] == _EAP_FAILURE:
            self.peer.receive(eap, _now())
            self.step = None
            self.pending = None
            self.due = _now() + (getattr(self.peer, "sleep_time", None) or self.retry)
            self._install()
            return self._answer(_CHANGED)
        pend = self.pending
        if pend is None or context_of(req) is not pend:
            return self._answer(_UNAUTHORIZED, payload=b"EAP-Success must come through the new OSCORE context")
        lifetime = (info or {}).get(INFO_LIFETIME, 0)
        if type(lifetime) is not int or lifetime < 0:
            lifetime = 0
        self.peer.receive(eap, _now())
        secret, salt, rid_c, rid_i = self._secrets
        self.expires = int(_now()) + lifetime if lifetime else 0
        self.store.put(SESSION, _cbor().dumps([secret, salt, rid_c, rid_i, self.expires]))
        old = self.context
        if old is not None and old is not pend:
            self.store.delete(old.name)
        self.context = pend
        self.pending = None
        self.step = None
        self._secrets = None
        self.due = self._rekey_time()
        self._install()
        return self._answer(_CHANGED)
