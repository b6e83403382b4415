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
#
# Steps 2-4 (the EAP resources' POST handler) live in coapeap.exchange, loaded with the first POST of a
# conversation and dropped (Device.unload) when a registered device's conversation ends: between re-keys a
# registered device carries only this module.
import asyncio

from coapeap import SUITE_CCM, WELL_KNOWN

try:
    from micropython import const
    from time import time as _now
except ImportError:  # CPython
    from time import time as _now

    def const(x):
        return x

_POST = const(2)
_NO_RESPONSE = const(258)
SESSION = "coapeap"  # store name of the session record
SEQUENCE = "coapeap-seq"  # store name of the OSCORE sender sequence bound


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
        self.secrets = None  # (Master Secret, Master Salt, RID-C, RID-I) of `pending`
        self.wake = asyncio.Event()
        self.due = 0  # when to announce next (time.time()), None: not before kick()
        self._restore()
        self.install()

    # ---- session record --------------------------------------------------------------------------------

    def _restore(self):
        blob = self.store.get(SESSION)
        if not blob:
            return
        try:
            import cbor
            secret, salt, rid_c, rid_i, expires = cbor.loads(blob)
            self.context = self.make_context(secret, salt, rid_c, rid_i, fresh=False)
            self.expires = expires
            self.due = self.rekey_time()
        except Exception:  # an unreadable record is no session: bootstrap again
            self.store.delete(SESSION)
            self.context = None

    def make_context(self, secret, salt, rid_c, rid_i, fresh=True):
        """The OSCORE context of a session (Sender ID = RID-C, Recipient ID = RID-I). The sequence number bound
        is kept per Recipient ID: a re-key's new context (a different RID-I) never overwrites the bound of the
        context still in use until its EAP-Success."""
        from oscore import Context
        name = SEQUENCE + "".join("%02x" % b for b in rid_i)
        if fresh:
            self.store.delete(name)  # a new Master Secret starts at sequence number 0
        return Context(secret, salt, rid_c, rid_i, store=self.store, name=name)

    def rekey_time(self):
        """When to announce for the re-key: the lifetime's margin before the session ends (None: no lifetime)."""
        if not self.expires:
            return None
        now = _now()
        return now + (self.expires - now) * (1 - self.margin) if self.expires > now else 0

    def install(self):
        """Put the session's contexts (and one pending EAP-Success) on the endpoint; then on_state."""
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
        self.route_step(path)
        # RFC 7967 No-Response 26: suppress 2.xx, 4.xx and 5.xx; a NON needs no exchange state
        self.ep.send_non(_POST, self.controller, WELL_KNOWN, path.encode(), ((_NO_RESPONSE, b"\x1a"),), self.rng(4))

    def route_step(self, path):
        """Serve the EAP resource `path`: only it and the one before it (for retransmissions) are served."""
        res = self.ep.resources
        if res:
            for p in [p for p in res if p.startswith("/eap/")]:
                if p != path and (self.last is None or p != self.last[0]):
                    self.ep.unroute(p)
        self.ep.route(path, post=self._post, max_body=1400)

    def _post(self, req):
        from coapeap import exchange
        resp = exchange.post(self, req)
        if self.step is None and self.context is not None:  # a conversation of a registered device ended
            self.unload()
        return resp

    def unload(self):
        """Drop the EAP resources' code (coapeap.exchange) until the next conversation loads it again."""
        import sys
        if sys.modules.pop("coapeap.exchange", None) is not None:
            pkg = sys.modules.get("coapeap")
            if pkg is not None and "exchange" in pkg.__dict__:
                delattr(pkg, "exchange")

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

