# CoAP codec: encode + decode of a typical request and its response (token, two Uri-Path, a Uri-Query,
# Content-Format, a 32-byte payload), ours on the MicroPython VM against aiocoap's Message on CPython.
from coap.msg import Message, decode

COMPARE = [
    ("CoAP request+response encode/decode: ours on the MicroPython VM vs aiocoap on CPython",
     ("bench_codec_roundtrip", "micropython"), ("bench_codec_roundtrip_aiocoap", "cpython"), 1.5),
    ("CoAP request+response encode/decode: ours vs aiocoap, both on CPython",
     ("bench_codec_roundtrip", "cpython"), ("bench_codec_roundtrip_aiocoap", "cpython"), None),
]
CPYTHON_ONLY = ("bench_codec_roundtrip_aiocoap",)

PAYLOAD = bytes(range(32))
TOKEN = b"\x5a\x17\x02\xc3"


def bench_codec_roundtrip():
    def op():
        m = Message(0, 3, 0x1234, TOKEN, PAYLOAD)  # CON PUT
        m.add(11, "sensors").add(11, "temperature").add(12, 50).add(15, "unit=celsius")
        req = decode(m.encode())
        assert req.path() == "/sensors/temperature" and req.query() == ["unit=celsius"]
        assert req.uint(12) == 50 and len(req.payload) == 32
        r = Message(2, 68, req.mid, req.token, PAYLOAD).add(12, 50)  # ACK 2.04
        resp = decode(r.encode())
        assert resp.token == TOKEN and resp.uint(12) == 50 and len(resp.payload) == 32
    return op


def bench_codec_roundtrip_aiocoap():
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    from aiocoap import Message as AMessage, CON, ACK, PUT, CHANGED

    def op():
        m = AMessage(mtype=CON, code=PUT, mid=0x1234, token=TOKEN, payload=PAYLOAD,
                     uri_path=("sensors", "temperature"), uri_query=("unit=celsius",), content_format=50)
        req = AMessage.decode(m.encode())
        assert req.opt.uri_path == ("sensors", "temperature") and req.opt.uri_query == ("unit=celsius",)
        assert req.opt.content_format == 50 and len(req.payload) == 32
        r = AMessage(mtype=ACK, code=CHANGED, mid=req.mid, token=req.token, payload=PAYLOAD, content_format=50)
        resp = AMessage.decode(r.encode())
        assert resp.token == TOKEN and resp.opt.content_format == 50 and len(resp.payload) == 32
    return op
