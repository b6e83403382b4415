# RFC 7252 message codec on both runtimes: option formats, extended delta/length, payload marker, repeated
# options, zero-copy parsing, and hostile datagrams.
import hgtest
from hgtest import unhex
from coap import MessageError, CoapError
from coap.msg import Message, decode, uint_bytes
from coap.occasional import unknown_critical
from coap import defs as D

MP_HEAP = "96k"


def test_rfc_example_get():
    # RFC 7252 Appendix A style: CON GET mid 0x7d34, no token, Uri-Path "temperature".
    m = Message(D.CON, D.GET, 0x7D34).add(D.URI_PATH, "temperature")
    assert bytes(m.encode()) == unhex("40 01 7d 34 bb") + b"temperature"
    d = decode(unhex("40 01 7d 34 bb") + b"temperature")
    assert (d.type, d.code, d.mid, d.token) == (D.CON, D.GET, 0x7D34, b"")
    assert d.path() == "/temperature"
    assert d.payload == b""


def test_piggybacked_response_bytes():
    m = Message(D.ACK, D.CONTENT, 0x7D34, b"\x20", b"22.3 C").add(D.CONTENT_FORMAT, 0)
    # Content-Format 0 is a zero-length uint.
    assert bytes(m.encode()) == unhex("61 45 7d 34 20 c0 ff") + b"22.3 C"


def test_uint_encoding_minimal():
    assert uint_bytes(0) == b""
    assert uint_bytes(1) == b"\x01"
    assert uint_bytes(255) == b"\xff"
    assert uint_bytes(256) == b"\x01\x00"
    assert uint_bytes(0x10000) == b"\x01\x00\x00"
    assert uint_bytes(0xFFFFFFFF) == b"\xff\xff\xff\xff"
    hgtest.raises(ValueError, uint_bytes, -1)


def _roundtrip_opt(num, value):
    m = Message(D.NON, D.POST, 1, b"tk").add(num, value)
    m.payload = b"p"
    enc = bytes(m.encode())
    d = decode(enc)
    assert [(n, bytes(v)) for n, v in d.items()] == [(num, value)], (num, len(value))
    assert bytes(d.payload) == b"p"
    return enc


def test_extended_delta_boundaries():
    # delta 12 (nibble), 13 (1-byte ext = 0), 268 (1-byte ext = 255), 269 (2-byte ext = 0), 65535.
    assert _roundtrip_opt(12, b"a")[6:8] == bytes((0xC1, ord("a")))
    assert _roundtrip_opt(13, b"a")[6:9] == bytes((0xD1, 0, ord("a")))
    assert _roundtrip_opt(268, b"a")[6:9] == bytes((0xD1, 255, ord("a")))
    assert _roundtrip_opt(269, b"a")[6:10] == bytes((0xE1, 0, 0, ord("a")))
    assert _roundtrip_opt(65535, b"a")[6:10] == bytes((0xE1, 0xFE, 0xF2, ord("a")))


def test_extended_length_boundaries():
    for ln, head in ((12, b"\x4c"), (13, b"\x4d\x00"), (268, b"\x4d\xff"), (269, b"\x4e\x00\x00"),
                     (1000, b"\x4e\x02\xdb")):
        v = bytes(i & 255 for i in range(ln))
        enc = _roundtrip_opt(4, v)
        assert enc[6:6 + len(head)] == head, ln


def test_both_extended():
    enc = _roundtrip_opt(300, bytes(20))
    assert enc[6:10] == bytes((0xED, 0, 31, 7))


def test_repeated_options_keep_order():
    m = Message(D.CON, D.GET, 5, b"\x01")
    m.add(D.URI_QUERY, "b=2").add(D.URI_PATH, "x").add(D.URI_QUERY, "a=1").add(D.URI_PATH, "y")
    m.add(D.URI_PATH, "z").add(D.ETAG, b"\x01").add(D.ETAG, b"\x02")
    d = decode(m.encode())
    assert d.path() == "/x/y/z"
    assert d.query() == ["b=2", "a=1"]
    assert [bytes(v) for v in d.all(D.ETAG)] == [b"\x01", b"\x02"]
    assert [n for n, _ in d.items()] == [4, 4, 11, 11, 11, 15, 15]


def test_set_path_with_query():
    m = Message().set_path("/a/b?x=1&y")
    assert m.path() == "/a/b" and m.query() == ["x=1", "y"]


def test_zero_copy_views():
    buf = bytearray(Message(D.CON, D.PUT, 9, b"t", b"payload!").add(D.URI_PATH, "abc").encode())
    d = decode(buf)
    v = d.opt(D.URI_PATH)
    assert isinstance(v, memoryview) and bytes(v) == b"abc"
    assert isinstance(d.payload, memoryview)
    buf[-1] = ord("?")  # the parsed message still points into the datagram
    assert bytes(d.payload) == b"payload?"
    assert d.opts == [11, 6, 9]  # flat (number, start, end) index, no copies


def test_uint_option_and_missing():
    d = decode(Message(D.CON, D.GET, 1).add(D.OBSERVE, 0).add(D.MAX_AGE, 300).encode())
    assert d.uint(D.OBSERVE) == 0
    assert d.uint(D.MAX_AGE) == 300
    assert d.uint(D.SIZE2) is None and d.opt(D.ETAG, b"x") == b"x"
    bad = decode(unhex("40 01 00 01 65 01 02 03 04 05"))  # Observe with 5 bytes
    hgtest.raises(MessageError, bad.uint, D.OBSERVE)


def test_edit_decoded_message():
    d = decode(Message(D.CON, D.GET, 1, b"", b"").add(D.URI_PATH, "a").encode())
    d.add(D.URI_PATH, "b")
    assert decode(d.encode()).path() == "/a/b"


def test_empty_message():
    d = decode(unhex("70 00 12 34"))
    assert (d.type, d.code, d.mid) == (D.RST, 0, 0x1234)
    e = hgtest.raises(MessageError, decode, unhex("60 00 12 34 ff 00"))
    assert e.mid == 0x1234 and e.type == D.ACK


def _bad(hexstr, expect_mid=True):
    e = hgtest.raises(MessageError, decode, unhex(hexstr))
    assert isinstance(e, ValueError) and isinstance(e, CoapError)
    if expect_mid:
        assert e.mid is not None and e.type is not None
    else:
        assert e.mid is None
    return e


def test_hostile_header():
    _bad("", False)
    _bad("40 01 00", False)
    _bad("80 01 00 01", False)         # version 2
    _bad("49 01 00 01 00 00 00 00 00 00 00 00 00")  # TKL 9
    _bad("4f 01 00 01")                 # TKL 15
    _bad("44 01 00 01 aa bb")           # token truncated
    _bad("40 20 00 01")                 # code class 1 is reserved
    _bad("40 e0 00 01")                 # class 7


def test_hostile_options():
    _bad("40 01 00 01 d1")              # delta 13 without its extension byte
    _bad("40 01 00 01 e1 00")           # delta 14 with one of two bytes
    _bad("40 01 00 01 1d")              # length 13 without extension
    _bad("40 01 00 01 13 61 62")        # length 3, two bytes left
    _bad("40 01 00 01 1e ff ff 00")     # length 65804 past the end
    _bad("40 01 00 01 f1 00")           # delta nibble 15 that is not the payload marker
    _bad("40 01 00 01 1f 00")           # length nibble 15
    _bad("40 01 00 01 b1 61 ff")        # payload marker with empty payload
    _bad("40 01 00 01 ff")
    _bad("40 01 00 01 e0 ff 00 e0 ff 00")  # option number beyond 65535


def test_error_text_is_clear():
    e = _bad("40 01 00 01 f1 00")
    assert "15" in str(e)
    e = _bad("40 01 00 01 b1 61 ff")
    assert "payload" in str(e)


def test_random_garbage_never_crashes():
    rng = hgtest.Rng(7252)
    ok = bad = 0
    for i in range(300):
        n = rng.below(24)
        data = bytes((0x40 | rng.below(64),)) + rng.bytes(n)
        try:
            d = decode(data)
            list(d.items())
            ok += 1
        except MessageError:
            bad += 1
    assert ok + bad == 300 and bad > 0


def test_truncations_of_valid_message():
    m = Message(D.CON, D.GET, 3, b"\x01\x02").add(D.URI_PATH, "a" * 20).add(D.URI_QUERY, "q" * 300)
    m.add(D.SIZE1, 70000)
    enc = bytes(m.encode())
    for cut in range(len(enc)):
        try:
            d = decode(enc[:cut])
            # A cut exactly at an option boundary is a valid shorter message.
            assert bytes(d.encode()) == enc[:cut]
        except MessageError:
            pass


def test_unknown_critical():
    assert unknown_critical(decode(Message().add(D.URI_PATH, "a").add(D.BLOCK2, 0).encode())) is None
    assert unknown_critical(decode(Message().add(9, b"x").encode())) == 9
    assert unknown_critical(decode(Message().add(2049, b"").encode())) == 2049
    assert unknown_critical(decode(Message().add(2048, b"").encode())) is None  # elective


def test_token_too_long():
    hgtest.raises(ValueError, Message(D.CON, D.GET, 1, bytes(9)).encode)
