# EAP-NOOB error notifications (RFC 9140 section 3.6.4): the codes, and the exception that carries one to the
# Type 0 message the peer sends. Loaded with an EAP conversation, never by a registered device at rest.
from eapnoob import const

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
