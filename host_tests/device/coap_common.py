# Shared helpers of the CoAP server case files (no cases of its own).
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
