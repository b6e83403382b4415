# EAP-NOOB (RFC 9140) for the device peer: a sans-IO core (eapnoob.peer) over bytes. A registered device loads
# only this, eapnoob.peer and (for the OOB resource) eapnoob.console; an EAP conversation loads the rest on demand:
# eapnoob.conversation (dispatch and error messages, eapnoob.errors), the strict JSON reader in eapnoob.wire, the
# exchanges in eapnoob.bootstrap and eapnoob.reconnect over the record fields in eapnoob.record, and the
# cryptosuites, KDF, Hoob and MACs in eapnoob.keys. Peer.unload() drops those again once registered.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

# PeerState (RFC 9140 Figure 1)
UNREGISTERED = const(0)
WAITING = const(1)
OOB_RECEIVED = const(2)
RECONNECTING = const(3)
REGISTERED = const(4)
