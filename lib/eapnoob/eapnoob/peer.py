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
# This module is what a registered device keeps loaded: the state, the store and the OOB entry points. An EAP
# conversation loads eapnoob.conversation (dispatch, the strict JSON reader in eapnoob.wire, error messages) and
# the exchange it needs, eapnoob.bootstrap (Initial, Waiting, OOB, Completion) or eapnoob.reconnect, with the KDF
# and the curves in eapnoob.keys; unload() drops all of them again once registered.
import json

from eapnoob import RECONNECTING, REGISTERED, WAITING, const

# RFC 9965 replaces RFC 9140's "noob@eap-noob.arpa" with this NAI for a peer that has none assigned.
DEFAULT_NAI = "@noob.eap.arpa"
NOOB_TIMEOUT = const(3600)  # RFC 9140 Appendix B, RECOMMENDED
OOB_RETRIES = const(5)  # RFC 9140 Appendix B, RECOMMENDED
STORE_NAME = "eapnoob"
_MAX_PACKET = const(1280)  # eapnoob.wire.MAX_PACKET
# The record fields this module reads (eapnoob.record's F_STATE, F_PEERID, F_NAI, F_SLEEP): private constants, so
# the field table stays out of a registered device's RAM.
_F_STATE = const(0)
_F_PEERID = const(1)
_F_NAI = const(2)
_F_SLEEP = const(21)
# Modules an EAP conversation loads; unload() drops them once the device is registered.
_CONVERSATION_MODULES = ("eapnoob.conversation", "eapnoob.bootstrap", "eapnoob.reconnect", "eapnoob.keys",
                         "eapnoob.wire", "eapnoob.errors", "eapnoob.record", "eapnoob.qr", "crypto.x25519",
                         "crypto.p256")


class Peer:
    def __init__(self, store, peer_info, suites=(1, 2), dirs=3, nai=DEFAULT_NAI, rng=None,
                 noob_timeout=NOOB_TIMEOUT, oob_retries=OOB_RETRIES, reconnect_mac_nai=True):
        """suites: the cryptosuites we accept, most preferred first; dirs: the OOB directions the device can do
        (1 = it can show a message, 2 = the user can enter one, 3 = both); nai: our NAI until the server assigns
        one; rng(n) -> n random bytes (default crypto.util.random_bytes); reconnect_mac_nai=False puts "" where
        RFC 9140 puts the NAI in the MACs2/MACp2 input, as the authors' transcripts (which predate the RFC) do."""
        self.store = store
        self.peer_info = bytes(peer_info)
        self.suites = suites
        self.dirs = dirs
        self.nai = nai
        if rng is None:
            from crypto.util import random_bytes as rng
        self.rng = rng
        self.noob_timeout = noob_timeout
        self.oob_retries = oob_retries
        self.reconnect_mac_nai = reconnect_mac_nai
        self.keys = None
        self.error = None  # (code, info, sent_by_us) of the last error notification
        self.conv = None  # the open conversation (eapnoob.conversation.Conversation)
        self.last = None  # (request, response): a retransmitted request gets the same response
        blob = store.get(STORE_NAME)
        rec = _decode(blob) if blob else None
        # A lost or unreadable record is a memory failure: Unregistered (RFC 9140 section 3.1).
        self.rec = rec if rec and _F_STATE in rec else {_F_STATE: b"0"}
        if self.state < RECONNECTING:
            # PeerInfo is sent only in the Initial Exchange: a registered device checks it if it starts over
            self._check_info()

    def _check_info(self):
        from eapnoob import conversation
        conversation.check_peer_info(self.peer_info)  # a JSON object of <= 500 bytes, or NoobError

    # ---- state -------------------------------------------------------------------------------------------

    @property
    def state(self):
        return int(self.rec[_F_STATE])

    @property
    def peer_id(self):
        raw = self.rec.get(_F_PEERID)
        return json.loads(raw) if raw else None

    @property
    def sleep_time(self):
        t = self.rec.get(_F_SLEEP)
        return int(t) if t else None

    @property
    def session_id(self):
        """EAP Session-Id (RFC 9140 section 3.5): 0x38 || MethodId, after a successful exchange."""
        return b"\x38" + self.keys[3] if self.keys else None

    def save(self, rec):
        self.store.put(STORE_NAME, _encode(rec))
        self.rec = rec

    def unregister(self):
        if self.state < RECONNECTING:  # never drop a persistent association on an in-band event
            self.store.delete(STORE_NAME)
            self.rec = {_F_STATE: b"0"}

    def reset(self):
        """User reset (RFC 9140 section 3.4.3): forget the association, back to Unregistered."""
        self._check_info()
        self.store.delete(STORE_NAME)
        self.rec = {_F_STATE: b"0"}
        self.conv = None
        self.keys = None

    def rekey(self):
        """Registered -> Reconnecting: the session keys are no longer accepted, or the application wants new ones."""
        if self.state == REGISTERED:
            rec = dict(self.rec)
            rec[_F_STATE] = b"%d" % RECONNECTING
            self.save(rec)

    def unload(self):
        """Registered: drop the conversation's code (eapnoob.conversation and the exchanges, the JSON reader, the
        KDF, the console QR code, the curves) from RAM, so the heap goes to what runs next (OSCORE). Anything
        dropped is imported again by the next conversation (a re-key)."""
        if self.state != REGISTERED:
            return
        import sys
        for name in _CONVERSATION_MODULES:
            if name in sys.modules:
                del sys.modules[name]
                pkg, _, attr = name.partition(".")
                p = sys.modules.get(pkg)
                if p is not None and attr in p.__dict__:
                    delattr(p, attr)
        import gc
        gc.collect()

    def identity(self):
        raw = self.rec.get(_F_NAI)
        return json.loads(raw) if raw else self.nai

    # ---- EAP ---------------------------------------------------------------------------------------------

    def receive(self, pkt, now=0):
        """One EAP packet from the authenticator -> the EAP response to send, or None. A malformed packet is
        discarded (RFC 3748 section 4); a malformed EAP-NOOB message gets an error notification."""
        n = len(pkt)
        if 4 <= n <= _MAX_PACKET and (pkt[0] == 3 or pkt[0] == 4) and 4 <= ((pkt[2] << 8) | pkt[3]) <= n:
            # EAP-Success / Failure (CoAP-EAP's last message, after unload()) ends the conversation here, without
            # loading its code again
            self.end()
            return None
        from eapnoob import conversation
        return conversation.receive(self, pkt, now)

    def end(self):
        """The conversation ended (EAP-Success or Failure)."""
        self.conv = None
        self.last = None

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


# ---- the record's coding -----------------------------------------------------------------------------------

def _encode(rec):
    out = []
    for k in sorted(rec):
        v = rec[k]
        out.append(bytes((k, len(v) >> 8, len(v) & 0xFF)))
        out.append(v)
    return b"".join(out)


def _decode(blob):
    """The record's fields, or None if the blob is not a whole record."""
    rec = {}
    i = 0
    n = len(blob)
    while i < n:
        if i + 3 > n:
            return None
        k = blob[i]
        ln = (blob[i + 1] << 8) | blob[i + 2]
        i += 3
        if i + ln > n:
            return None
        rec[k] = blob[i:i + ln]
        i += ln
    return rec
