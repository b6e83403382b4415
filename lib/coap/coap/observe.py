# Observe (RFC 7641), sans-IO: notification ordering and the server's observer registry.

try:
    from time import ticks_diff
except ImportError:
    def ticks_diff(a, b):
        return a - b


def fresher(v1, t1, v2, t2):
    """RFC 7641 section 3.4: is a notification (v2 received at ms t2) newer than (v1 at t1)?"""
    if v1 is None:
        return True
    return (v1 < v2 and v2 - v1 < 0x800000) or (v1 > v2 and v1 - v2 > 0x800000) or ticks_diff(t2, t1) > 128000


class Observers:
    """Observers of one resource: (remote, token) -> [request, notifications_sent]. At most `limit`;
    the sequence number is 24-bit and shared by the resource, rising with every notification."""

    def __init__(self, limit=4, con_every=8):
        self.limit = limit
        self.con_every = con_every  # every n-th notification is CON, to learn if observers are still there
        self.reg = {}
        self.seq = 2  # registration responses carry a number too; start above RFC's reserved-for-ACK 0/1

    def add(self, remote, token, req):
        """Registers or refreshes; returns False when the limit is reached."""
        key = (remote, token)
        if key not in self.reg and len(self.reg) >= self.limit:
            return False
        self.reg[key] = [req, 0]
        return True

    def remove(self, remote, token):
        return self.reg.pop((remote, token), None) is not None

    def next_seq(self):
        self.seq = (self.seq + 1) & 0xFFFFFF
        return self.seq

    def want_con(self, entry):
        entry[1] += 1
        return entry[1] % self.con_every == 0

    def __len__(self):
        return len(self.reg)
