# The EAP-NOOB peer (RFC 9140) as a sans-IO state machine: EAP packets in, EAP packets out, the association in
# a store (lib/store FileStore) written atomically on every state change, so a reboot in any PeerState resumes.
#
#   peer = Peer(FileStore("/noob"), b'{"Type":"sensor","Manufacturer":"Acme"}')
#   response = peer.receive(eap_request, now)       # bytes to send back, or None
#   peer.oob_message(now)                           # peer -> server OOB as URL text (state 1, Dirp 1 or 3)
#   peer.accept_oob(text)                           # server -> peer OOB typed in by the user (Dirp 2 or 3)
#
# `now` is the edge's clock in seconds: it dates the Noobs the peer sends (NoobTimeout). After EAP-Success
# (state 4) peer.keys holds (MSK, EMSK, AMSK, MethodId).
#
# The exchanges live in eapnoob.bootstrap (Initial, Waiting, OOB, Completion) and eapnoob.reconnect, imported on
# first use: a registered device never loads the bootstrap code, and can drop it from sys.modules after.
import json

from crypto.util import random_bytes

from eapnoob import (E_INVALID_DATA, E_NO_CRYPTOSUITE, E_UNEXPECTED_PEERID, E_UNEXPECTED_TYPE,
                     E_UNRECOGNIZED_NOOBID, NoobError, OOB_RECEIVED, RECONNECTING, REGISTERED, UNREGISTERED,
                     WAITING)
from eapnoob import wire
from eapnoob.record import F_PEERID, F_NAI, F_RNOOB, F_SLEEP, F_STATE, MAX_INFO, X_INITIAL, X_NONE, as_int, dec, \
    decode, encode
from eapnoob.wire import json_str

# RFC 9965 replaces RFC 9140's "noob@eap-noob.arpa" with this NAI for a peer that has none assigned.
DEFAULT_NAI = "@noob.eap.arpa"
NOOB_TIMEOUT = 3600  # RFC 9140 Appendix B, RECOMMENDED
OOB_RETRIES = 5  # RFC 9140 Appendix B, RECOMMENDED
STORE_NAME = "eapnoob"


class _Conversation:
    """What one EAP conversation has seen so far; never persisted (an interrupted exchange restarts)."""

    def __init__(self, expect):
        self.expect = expect
        self.exch = X_NONE
        self.peer_id = None
        self.noob = None


class Peer:
    def __init__(self, store, peer_info, suites=(1, 2), dirs=3, nai=DEFAULT_NAI, rng=random_bytes,
                 noob_timeout=NOOB_TIMEOUT, oob_retries=OOB_RETRIES, reconnect_mac_nai=True):
        """suites: the cryptosuites we accept, most preferred first; dirs: the OOB directions the device can do
        (1 = it can show a message, 2 = the user can enter one, 3 = both); nai: our NAI until the server assigns
        one; reconnect_mac_nai=False puts "" where RFC 9140 puts the NAI in the MACs2/MACp2 input, as the
        authors' transcripts (which predate the RFC) do."""
        wire.Message(peer_info)  # a JSON object, or NoobError
        if len(peer_info) > MAX_INFO:
            raise NoobError(E_INVALID_DATA, "PeerInfo longer than 500 bytes")
        self.store = store
        self.peer_info = bytes(peer_info)
        self.suites = suites
        self.dirs = dirs
        self.nai = nai
        self.rng = rng
        self.noob_timeout = noob_timeout
        self.oob_retries = oob_retries
        self.reconnect_mac_nai = reconnect_mac_nai
        self.keys = None
        self.error = None  # (code, info, sent_by_us) of the last error notification
        self._conv = None
        self._last = None  # (request, response): a retransmitted request gets the same response
        blob = store.get(STORE_NAME)
        rec = decode(blob) if blob else None
        # A lost or unreadable record is a memory failure: Unregistered (RFC 9140 section 3.1).
        self.rec = rec if rec and F_STATE in rec else {F_STATE: b"0"}

    # ---- state -------------------------------------------------------------------------------------------

    @property
    def state(self):
        return int(self.rec[F_STATE])

    @property
    def peer_id(self):
        raw = self.rec.get(F_PEERID)
        return json.loads(raw) if raw else None

    @property
    def sleep_time(self):
        return as_int(self.rec.get(F_SLEEP))

    @property
    def session_id(self):
        """EAP Session-Id (RFC 9140 section 3.5): 0x38 || MethodId, after a successful exchange."""
        return b"\x38" + self.keys[3] if self.keys else None

    def save(self, rec):
        self.store.put(STORE_NAME, encode(rec))
        self.rec = rec

    def _set_state(self, state):
        rec = dict(self.rec)
        rec[F_STATE] = dec(state)
        self.save(rec)

    def unregister(self):
        if self.state < RECONNECTING:  # never drop a persistent association on an in-band event
            self.store.delete(STORE_NAME)
            self.rec = {F_STATE: b"0"}

    def reset(self):
        """User reset (RFC 9140 section 3.4.3): forget the association, back to Unregistered."""
        self.store.delete(STORE_NAME)
        self.rec = {F_STATE: b"0"}
        self._conv = None
        self.keys = None

    def rekey(self):
        """Registered -> Reconnecting: the session keys are no longer accepted, or the application wants new ones."""
        if self.state == REGISTERED:
            self._set_state(RECONNECTING)

    def unload(self):
        """Registered: drop the bootstrap code (eapnoob.bootstrap, the console QR code, the curves) from RAM, so
        the heap goes to what runs next (OSCORE). Anything dropped is imported again if it is needed (a Reconnect
        with ECDHE reloads its curve)."""
        if self.state != REGISTERED:
            return
        import sys
        for name in ("eapnoob.bootstrap", "eapnoob.qr", "crypto.x25519", "crypto.p256"):
            if name in sys.modules:
                del sys.modules[name]
                pkg, _, attr = name.partition(".")
                p = sys.modules.get(pkg)
                if p is not None and attr in p.__dict__:
                    delattr(p, attr)
        import gc
        gc.collect()

    def identity(self):
        raw = self.rec.get(F_NAI)
        return json.loads(raw) if raw else self.nai

    # ---- EAP ---------------------------------------------------------------------------------------------

    def receive(self, pkt, now=0):
        """One EAP packet from the authenticator -> the EAP response to send, or None. A malformed packet is
        discarded (RFC 3748 section 4); a malformed EAP-NOOB message gets an error notification."""
        try:
            code, ident, typ, data = wire.parse(pkt)
        except wire.EapError:
            return None
        if code == wire.SUCCESS or code == wire.FAILURE:
            self._conv = None
            self._last = None
            return None
        if code != wire.REQUEST:
            return None
        pkt = bytes(pkt)
        last = self._last
        if last and last[0] == pkt:
            return last[1]
        if typ == wire.TYPE_IDENTITY:
            self._conv = None
            body = self.identity().encode()
        elif typ == wire.TYPE_NOTIFICATION:
            body = b""
        elif typ != wire.TYPE_NOOB:
            typ = wire.TYPE_NAK
            body = bytes((wire.TYPE_NOOB,))
        else:
            body = self._noob(data, now)
            if body is None:
                return None
        resp = wire.build(wire.RESPONSE, ident, typ, body)
        self._last = (pkt, resp)
        return resp

    def _noob(self, data, now):
        conv = self._conv
        try:
            msg = wire.Message(data)
            typ = msg.int(b"Type", 0, 9)
            if typ == 0:
                return self._on_error(msg)
            if typ == 1:
                msg.check_members((b"Type",))
                return self._on_type1()
            if conv is None or typ not in conv.expect:
                raise NoobError(E_UNEXPECTED_TYPE, "unexpected message type")
            expect = conv.expect
            conv.expect = ()
            if typ >= 7:
                from eapnoob import reconnect as exchange
            else:
                from eapnoob import bootstrap as exchange
            # a missing PeerId is caught by the handler's member check (1002)
            if typ != 2 and typ != 7 and msg.has(b"PeerId") and \
                    msg.raw(b"PeerId") != (conv.peer_id if typ in (3, 8, 9) else self.rec[F_PEERID]):
                raise NoobError(E_UNEXPECTED_PEERID, "unexpected PeerId")
            try:
                return getattr(exchange, "on_type%d" % typ)(self, conv, msg, now)
            except MemoryError:  # nothing was answered: the retransmission of this request is taken afresh
                conv.expect = expect
                raise
        except NoobError as e:
            return self._send_error(e)

    def _send_error(self, e):
        conv = self._conv
        self.error = (e.code, e.info, True)
        exch = conv.exch if conv else X_NONE
        self._conv = None
        if exch == X_INITIAL:
            self.unregister()
        pid = conv.peer_id if conv and conv.peer_id else self.rec.get(F_PEERID)
        out = b'{"Type":0,'
        if pid:
            out += b'"PeerId":' + pid + b","
        return out + b'"ErrorCode":' + dec(e.code) + b',"ErrorInfo":' + json_str(e.info[:MAX_INFO]) + b"}"

    def _on_error(self, msg):
        """An error notification from the server (RFC 9140 section 3.6): no response; the state follows the
        exchange it ended."""
        msg.check_members((b"Type", b"ErrorCode"), (b"PeerId", b"ErrorInfo"))
        code = msg.int(b"ErrorCode", 0, 9999)
        info = msg.text(b"ErrorInfo", MAX_INFO) if msg.has(b"ErrorInfo") else ""
        self.error = (code, info, False)
        conv = self._conv
        exch = conv.exch if conv else X_NONE
        self._conv = None
        if exch == X_INITIAL:
            self.unregister()
        elif code == E_UNRECOGNIZED_NOOBID and self.state == OOB_RECEIVED:
            # OOB Reject: the server does not know the Noob we were given (expired or spoofed)
            rec = dict(self.rec)
            rec[F_STATE] = dec(WAITING)
            rec.pop(F_RNOOB, None)
            self.save(rec)
        return None

    # ---- common handshake --------------------------------------------------------------------------------

    def _on_type1(self):
        self.keys = None
        state = self.state
        if state == REGISTERED:  # a new EAP conversation means the old keys are not accepted: Reconnecting
            self._set_state(RECONNECTING)
            state = RECONNECTING
        self._conv = _Conversation((2,) if state == UNREGISTERED else (2, 4, 6) if state == WAITING
                                   else (2, 5) if state == OOB_RECEIVED else (7,))
        if state == UNREGISTERED:  # RFC 9140 section 3.2.1: SHOULD omit PeerId
            return b'{"Type":1,"PeerState":0}'
        return b'{"Type":1,"PeerId":' + self.rec[F_PEERID] + b',"PeerState":' + dec(state) + b"}"

    def choose_suite(self, offered):
        for cs in self.suites:
            if cs in offered:
                return cs
        raise NoobError(E_NO_CRYPTOSUITE, "no common cryptosuite")

    # ---- the OOB step ------------------------------------------------------------------------------------

    def oob_message(self, now):
        """The peer -> server OOB message as URL text (RFC 9140 Appendix D), or None outside Waiting for OOB
        with Dirp 1 or 3 (see eapnoob.bootstrap.oob_message)."""
        if self.state != WAITING:
            return None
        from eapnoob import bootstrap
        return bootstrap.oob_message(self, now)

    def accept_oob(self, text):
        """A server -> peer OOB message the user entered; True if accepted (see eapnoob.bootstrap.accept_oob)."""
        if self.state != WAITING:
            return False
        from eapnoob import bootstrap
        return bootstrap.accept_oob(self, text)
