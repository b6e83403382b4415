# OSCORE Outer Block-wise (lib/oscore/oscore/outer.py), server side: the 12 Outer Block1 blocks (256 B) of one
# protected 3000-byte PUT put together and verified; alloc/op (GC off) and the peak heap are the reassembly's
# and the 3 KB decryption's. 256k: with the GC off, a 128k VM heap that the other benchmarks fragmented cannot
# give the 3 KB buffers.
from coap.msg import Message
from oscore import Context
from oscore.client import protect_request
from oscore.transform import Oscore

MP_HEAP = "256k"


def bench_outer_block1_3000():
    client = Context(bytes(range(16)), b"", b"\x01", b"\x02")
    server = Context(bytes(range(16)), b"", b"\x02", b"\x01")
    m = Message(0, 3, 0x1234, b"\x5a\x17", bytes(3000)).add(11, "fw")
    out, _ = protect_request(client, m)
    ct = bytes(out.payload)
    blocks = []
    for i in range(0, len(ct), 256):
        b = Message(0, out.code, i // 256, b"\x5a\x17", ct[i:i + 256])
        b.opts = list(out.opts)
        b.add(27, ((i // 256) << 4) | (8 if i + 256 < len(ct) else 0) | 4)
        if not i:
            b.add(60, len(ct))  # Size1, as our client and aiocoap send it: the buffer is made once
        b.remote = "peer"
        blocks.append(b)
    tf = Oscore([server])

    def op():
        server.top = -1
        server.bits = 0
        for b in blocks:
            r = tf.incoming_request(None, b)
        if r.code == 160:  # the transform answers 5.00 when the heap ran out: the peak search must see it
            raise MemoryError
        assert r.code == 3 and len(r.payload) == 3000
    return op
