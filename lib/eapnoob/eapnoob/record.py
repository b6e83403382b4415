# The fields of the peer's stored association (one record in lib/store, coded by eapnoob.peer: a tag byte, two
# length bytes and the value per field; integers as decimal text), for the exchange modules. eapnoob.peer keeps
# private copies of the four it reads, so a registered device does not load this table.
from eapnoob import const

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


def as_int(b):
    return int(b) if b else None


def dec(n):
    return b"%d" % n
