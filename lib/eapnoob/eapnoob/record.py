# The peer's stored association (one record in lib/store): a tag byte, two length bytes and the value per
# field; integers as decimal text. Shared by eapnoob.peer and the exchange modules it loads on demand.
from eapnoob import E_INVALID_DATA, NoobError, const
from eapnoob.wire import b64e

MAX_INFO = const(500)  # ServerInfo / PeerInfo / ErrorInfo bytes (RFC 9140 section 3.3.2)

# Fields
F_STATE = const(0)
F_PEERID = const(1)  # raw JSON string exactly as the server sent it
F_NAI = const(2)  # raw JSON string: NewNAI as received, or ours
F_VERP = const(3)
F_CS = const(4)
F_CS_PREV = const(5)
F_KZ = const(6)
F_KZ_PREV = const(7)
F_VERS = const(8)  # the Initial Exchange, kept raw for Hoob and MACs (states 1-2)
F_CSS = const(9)
F_DIRS = const(10)
F_SINFO = const(11)
F_DIRP = const(12)
F_PKS = const(13)
F_NS = const(14)
F_PKP = const(15)
F_NP = const(16)
F_Z = const(17)  # the ECDHE shared secret, so the private key need not be kept
F_NOOBS = const(18)  # Noobs we sent: 16 bytes each + 8-byte big-endian time
F_RNOOB = const(19)  # the Noob the user gave us (state 2)
F_RETRIES = const(20)  # rejected OOB messages so far
F_SLEEP = const(21)  # the latest SleepTime

# Conversation: which exchange we are in (RFC 9140 section 3.6 sets the state after an error by exchange).
X_NONE = const(0)
X_INITIAL = const(1)
X_WAITING = const(2)
X_COMPLETION = const(3)
X_RECONNECT = const(4)


def encode(rec):
    out = []
    for k in sorted(rec):
        v = rec[k]
        out.append(bytes((k, len(v) >> 8, len(v) & 0xFF)))
        out.append(v)
    return b"".join(out)


def decode(blob):
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


def as_int(b):
    return int(b) if b else None


def dec(n):
    return b"%d" % n


def json_b64(raw):
    return b'"' + b64e(raw) + b'"'


def check_text(msg, name, max_bytes):
    s = msg.text(name, max_bytes)
    if not s or "\x00" in s or " " in s:
        raise NoobError(E_INVALID_DATA, "bad " + name.decode())
    return s
