# Raw sockaddr bytes as MicroPython's unix port returns them from recvfrom -> (host, port). Only that port
# needs it (CPython and the lwIP ports return tuples), so coap.udp loads it on the first such address.


def parse(addr):
    a = bytes(addr)
    family = a[0] if a[1] == 0 else a[1]  # Linux: little-endian u16 sa_family; BSD: sa_len, then sa_family
    port = (a[2] << 8) | a[3]
    if family == 2:
        return "%d.%d.%d.%d" % (a[4], a[5], a[6], a[7]), port
    h = a[8:24]
    return ":".join("%x" % ((h[i] << 8) | h[i + 1]) for i in range(0, 16, 2)), port
