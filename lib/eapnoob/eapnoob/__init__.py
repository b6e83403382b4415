# EAP-NOOB (RFC 9140) for the device peer: a sans-IO core (eapnoob.peer) over bytes, with the EAP framing and
# the strict JSON reader in eapnoob.wire and the cryptosuites, KDF, Hoob and MACs in eapnoob.keys.
# Submodules are imported on demand, so the bootstrap phase can be dropped from RAM once registered.
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

# Error codes (RFC 9140 section 5.3)
E_INVALID_NAI = const(1001)
E_MESSAGE_STRUCTURE = const(1002)
E_INVALID_DATA = const(1003)
E_UNEXPECTED_TYPE = const(1004)
E_INVALID_ECDHE_KEY = const(1005)
E_UNWANTED_PEER = const(2001)
E_STATE_MISMATCH = const(2002)
E_UNRECOGNIZED_NOOBID = const(2003)
E_UNEXPECTED_PEERID = const(2004)
E_NO_VERSION = const(3001)
E_NO_CRYPTOSUITE = const(3002)
E_NO_DIRECTION = const(3003)
E_HMAC = const(4001)
E_APPLICATION = const(5001)
E_SERVER_INFO = const(5002)
E_SERVER_URL = const(5003)
E_PEER_INFO = const(5004)


class NoobError(ValueError):
    """A protocol error with its RFC 9140 error code (sent to the other side as a Type 0 message)."""

    def __init__(self, code, info=""):
        super().__init__(code, info)
        self.code = code
        self.info = info
