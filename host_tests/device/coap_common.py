# Shared helpers of the CoAP server case files (no cases of its own).
from coap import defs as D
from coap import dedup
from coap.msg import decode
from coap.transport import Params


class Recorder:
    # Transport that keeps what the server sends, for driving a server datagram by datagram.
    def __init__(self, max_message_size=1152):
        self.params = Params()
        self.max_message_size = max_message_size
        self.sent = []

    async def recv(self):
        raise OSError("no input")

    def send(self, data, remote):
        self.sent.append((bytes(data), remote))

    def close(self):
        pass

    def take(self):
        out = [decode(d) for d, _ in self.sent]
        self.sent = []
        return out


def dedup_answer(d, remote, mid, now):
    # What the dedup cache sends for a duplicate CON of (remote, mid) at time now, or None.
    s = dedup.find(d, remote, mid, now)
    d.t.sent = []
    if s < 0 or not dedup.resend(d, s, D.CON) or not d.t.sent:
        return None
    return d.t.sent[0][0]


def dedup_remember(d, remote, mid, value, now):
    dedup.store(d, dedup.add(d, remote, mid, now), value)
