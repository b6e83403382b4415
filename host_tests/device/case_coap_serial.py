# slipmux framing (coap.slip): FCS, encoder, incremental decoder against hostile streams.
import hgtest
from coap import slip

MP_HEAP = "96k"

# A CoAP GET /temp with token 0xC0DB: the header and token need escaping on the wire.
COAP_GET = hgtest.unhex("42 01 c0 db c0 db b4 74 65 6d 70")


def events(dec, data, chunk=None):
    """All events for data fed in chunks of `chunk` bytes (all at once if None), as (kind, bytes)."""
    out = []
    step = chunk or max(1, len(data))
    for off in range(0, len(data), step):
        dec.feed(data[off:off + step])
        while True:
            ev = dec.next()
            if ev is None:
                break
            if ev == slip.TEXT and out and out[-1][0] == slip.TEXT:
                out[-1] = (slip.TEXT, out[-1][1] + bytes(dec.data))  # text split by the chunking
            else:
                out.append((ev, bytes(dec.data)))
    return out


def bitwise_fcs(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def test_fcs16_check_value():
    # CRC-16/X-25 (the RFC 1662 FCS): check value over "123456789" is 0x906E.
    assert slip.fcs16(b"123456789") ^ 0xFFFF == 0x906E
    assert slip._fcs_py(b"123456789", 9, 0xFFFF) ^ 0xFFFF == 0x906E
    if hgtest.IS_MICROPYTHON:  # the VM has the viper emitter, so the fast path must be the one in use
        assert slip._fcs is slip._fcs_viper and slip._escape is slip._escape_viper
    # RFC 1662: running the FCS over data plus its FCS (LSB first) leaves the good-FCS constant.
    fcs = slip.fcs16(b"123456789") ^ 0xFFFF
    assert slip.fcs16(b"123456789" + bytes((fcs & 0xFF, fcs >> 8))) == slip.FCS_GOOD


def test_fcs_table_matches_bitwise():
    rng = hgtest.Rng(7)
    for n in (0, 1, 2, 31, 200):
        data = rng.bytes(n)
        assert slip.fcs16(data) == bitwise_fcs(data)
        assert slip._fcs_py(data, n, 0xFFFF) == bitwise_fcs(data)


def test_encode_diagnostic_frame():
    # The form the draft describes (and the Rust slipmux crate's example): END 0x0A text END.
    assert slip.encode(slip.T_DIAG, b"Hello World!") == b"\xc0\x0aHello World!\xc0"


def test_encode_coap_escapes_and_fcs():
    frame = slip.encode(slip.T_COAP, COAP_GET)
    fcs = slip.fcs16(b"\xa9" + COAP_GET) ^ 0xFFFF
    body = b"\x42\x01\xdb\xdc\xdb\xdd\xdb\xdc\xdb\xdd\xb4temp"
    assert frame == b"\xc0\xa9" + body + bytes((fcs & 0xFF, fcs >> 8)) + b"\xc0", frame
    assert slip.max_encoded(len(COAP_GET)) >= len(frame)


def test_encode_escapes_fcs_bytes():
    # Find messages whose FCS contains END or ESC: the FCS bytes are escaped like the rest.
    rng = hgtest.Rng(99)
    found = 0
    for _ in range(3000):
        msg = b"\x50\x45" + rng.bytes(4)
        fcs = slip.fcs16(b"\xa9" + msg) ^ 0xFFFF
        lo, hi = fcs & 0xFF, fcs >> 8
        if lo in (0xC0, 0xDB) or hi in (0xC0, 0xDB):
            frame = slip.encode(slip.T_COAP, msg)
            assert frame.count(b"\xc0") == 2  # only the delimiters
            dec = slip.Decoder()
            assert events(dec, frame) == [(slip.COAP, msg)]
            found += 1
            if found == 4:
                break
    assert found == 4


def test_encode_into_errors():
    out = bytearray(10)
    hgtest.raises(slip.FrameError, slip.encode_into, out, slip.T_COAP, b"12")  # 2*2+7 = 11 > 10
    assert slip.encode_into(bytearray(11), slip.T_COAP, b"12") >= 7
    hgtest.raises(slip.FrameError, slip.encode_into, bytearray(64), 0x42, b"x")  # unknown type
    hgtest.raises(slip.FrameError, slip.encode_into, bytearray(64), 0x45, b"\x60abc")  # type != first byte
    hgtest.raises(slip.FrameError, slip.encode_into, bytearray(64), slip.T_COAP, b"ab", 3)
    assert isinstance(slip.FrameError("x"), ValueError)


def test_escape_paths_agree():
    # The viper path (MicroPython) and the pure path must produce identical bytes.
    rng = hgtest.Rng(3)
    for n in (0, 1, 5, 64, 300):
        data = bytearray(rng.bytes(n))
        for i in range(0, n, 3):
            data[i] = rng.choice((0xC0, 0xDB, 0xDC, 0xDD))
        a = bytearray(2 * n + 4)
        b = bytearray(2 * n + 4)
        ka = slip._escape(data, n, a, 2)
        kb = slip._escape_py(data, n, b, 2)
        assert ka == kb and a == b
        assert slip._fcs(data, n, 0xFFFF) == slip._fcs_py(data, n, 0xFFFF)


def test_unescape_paths_agree():
    # The viper unescape (MicroPython) and the pure one: same status, positions and bytes, including bad
    # escapes, an ESC at the end of the stretch and a full buffer.
    from array import array
    rng = hgtest.Rng(5)
    pool = (0xDB, 0xDB, 0xDC, 0xDD, 0x41, 0x00, 0xFF)
    statuses = set()
    for trial in range(300):
        n = rng.below(40)
        src = bytes(rng.choice(pool) if rng.below(2) else rng.below(256) for _ in range(n)).replace(b"\xc0", b"")
        lim = rng.below(48)
        i0 = rng.below(len(src) + 1)
        out = []
        for fn in (slip._unescape, slip._unescape_py):
            dst = bytearray(48)
            st = array("i", (0, 0))
            r = fn(src, i0, len(src), dst, 2 if lim > 2 else 0, lim, st)
            out.append((r, st[0], st[1], bytes(dst)))
        if out[0][0] == 3:  # dst full: the frame is dropped, positions and bytes do not matter
            assert out[1][0] == 3, (src, i0, lim, out)
        else:
            assert out[0] == out[1], (src, i0, lim, out)
        statuses.add(out[0][0])
    assert statuses == {0, 1, 2, 3}
    if hgtest.IS_MICROPYTHON:
        assert slip._unescape is slip._unescape_viper


def test_roundtrip_all_types_with_text():
    pkt4 = b"\x45\x00\x00\x1c" + bytes(range(0xB0, 0xE0))
    pkt6 = b"\x60" + bytes(range(0xC0, 0xFF)) + b"\xdb\xc0"
    diag = "temp 21.5\u00b0C\n".encode()
    stream = (b"boot: hello\r\n" + slip.encode(slip.T_COAP, COAP_GET) + b">>> print\r\n"
              + slip.encode(slip.T_DIAG, diag) + slip.encode(0x45, pkt4) + slip.encode(0x60, pkt6)
              + b"tail")
    want = [(slip.TEXT, b"boot: hello\r\n"), (slip.COAP, COAP_GET), (slip.TEXT, b">>> print\r\n"),
            (slip.DIAG, diag), (slip.PACKET, pkt4), (slip.PACKET, pkt6), (slip.TEXT, b"tail")]
    dec = slip.Decoder()
    assert events(dec, stream) == want
    assert dec.frames == 4 and dec.errors == 0
    # The same stream split at every size gives the same events (ESC, END and the type byte land on
    # chunk boundaries).
    for chunk in (1, 2, 3, 5, 7, 13, 64):
        dec = slip.Decoder()
        assert events(dec, stream, chunk) == want, chunk
        assert dec.errors == 0


def test_escape_at_end_of_chunk():
    frame = slip.encode(slip.T_COAP, COAP_GET)
    cut = frame.index(b"\xdb") + 1  # chunk ends right after an ESC
    dec = slip.Decoder()
    dec.feed(frame[:cut])
    assert dec.next() is None
    dec.feed(frame[cut:])
    assert dec.next() == slip.COAP and bytes(dec.data) == COAP_GET
    assert dec.next() is None


def test_bad_escape_drops_frame_and_recovers():
    good = slip.encode(slip.T_COAP, COAP_GET)
    bad = b"\xc0\xa9\x40\x01\xdb\x41\x00\x00\xc0"  # ESC followed by 'A'
    dec = slip.Decoder()
    assert events(dec, bad + good) == [(slip.COAP, COAP_GET)]
    assert dec.bad_escape == 1 and dec.frames == 1


def test_abort_sequence():
    good = slip.encode(slip.T_COAP, COAP_GET)
    aborted = b"\xc0\xa9\x40\x01\x00\xdb\xc0"  # ESC END abandons the frame
    dec = slip.Decoder()
    assert events(dec, aborted + b"text" + good) == [(slip.TEXT, b"text"), (slip.COAP, COAP_GET)]
    assert dec.aborted == 1 and dec.errors == 0


def test_bad_fcs_is_dropped():
    frame = bytearray(slip.encode(slip.T_COAP, COAP_GET))
    frame[3] ^= 0x01
    dec = slip.Decoder()
    assert events(dec, bytes(frame) + slip.encode(slip.T_COAP, b"\x60\x00\x12\x34")) == \
        [(slip.COAP, b"\x60\x00\x12\x34")]
    assert dec.bad_fcs == 1
    # Too short to hold an FCS.
    dec = slip.Decoder()
    assert events(dec, b"\xc0\xa9\x01\xc0") == []
    assert dec.bad_fcs == 1


def test_unknown_type_and_empty_frames_ignored():
    dec = slip.Decoder()
    stream = b"\xc0\xc0\xc0\x42secret\xc0\xc0" + slip.encode(slip.T_COAP, COAP_GET) + b"\xc0\xc0"
    assert events(dec, stream) == [(slip.COAP, COAP_GET)]
    assert dec.unknown == 1 and dec.frames == 1


def test_back_to_back_frames_single_end():
    # Other slipmux senders may share one END between frames: a CoAP type byte right after a
    # closing END still starts a frame; other bytes there are text.
    a = slip.encode(slip.T_COAP, COAP_GET)
    b = slip.encode(slip.T_COAP, b"\x60\x45\x00\x01")
    dec = slip.Decoder()
    assert events(dec, a + b[1:] + b"ok\n") == [(slip.COAP, COAP_GET), (slip.COAP, b"\x60\x45\x00\x01"),
                                               (slip.TEXT, b"ok\n")]


def test_max_frame_boundary():
    dec = slip.Decoder(64)
    fits = b"\x40\x01\x00\x01" + b"\xc0" * (64 - 3 - 4)  # 61 bytes: with type and FCS exactly 64
    over = fits + b"x"
    assert events(dec, slip.encode(slip.T_COAP, fits)) == [(slip.COAP, fits)]
    assert events(dec, slip.encode(slip.T_COAP, over)) == []
    assert dec.oversize == 1
    # Overflow on an escaped byte, and a too-big packet frame.
    assert events(dec, slip.encode(slip.T_DIAG, b"\xc0" * 64)) == []
    assert events(dec, slip.encode(0x60, b"\x60" + bytes(64))) == []
    assert dec.oversize == 3
    assert events(dec, slip.encode(0x60, b"\x60" + bytes(63))) == [(slip.PACKET, b"\x60" + bytes(63))]
    hgtest.raises(ValueError, slip.Decoder, 3)


def test_giant_frame_stays_bounded():
    import gc
    dec = slip.Decoder(256)
    chunk = bytes(range(1, 0xC0)) * 8  # 1528 bytes, no END
    start = b"\xc0\xa9" + chunk
    good = slip.encode(slip.T_COAP, COAP_GET)
    gc.collect()
    before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    dec.feed(start)
    assert dec.next() is None
    for _ in range(300):  # ~450 KB into one frame
        dec.feed(chunk)
        assert dec.next() is None
    gc.collect()
    after = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    assert after - before < 1024, after - before
    assert dec.oversize == 1
    assert events(dec, good) == [(slip.COAP, COAP_GET)]  # its END closes the giant frame, then it decodes
    assert dec.oversize == 1 and dec.bad_fcs == 0


def test_feed_before_consumed_is_an_error():
    frame = slip.encode(slip.T_COAP, COAP_GET)
    dec = slip.Decoder()
    dec.feed(b"text" + frame)
    assert dec.next() == slip.TEXT
    hgtest.raises(ValueError, dec.feed, b"x")
    assert dec.pending() == len(frame) - 1
    assert dec.next() == slip.COAP and bytes(dec.data) == COAP_GET
    dec.feed(b"x")
    dec.reset()
    assert dec.pending() == 0


def test_feed_with_length_and_memoryview():
    frame = slip.encode(slip.T_COAP, COAP_GET)
    buf = bytearray(256)
    buf[:len(frame)] = frame
    dec = slip.Decoder()
    assert events_n(dec, buf, len(frame)) == [(slip.COAP, COAP_GET)]
    dec.feed(memoryview(frame))
    assert dec.next() == slip.COAP and bytes(dec.data) == COAP_GET


def events_n(dec, buf, n):
    dec.feed(buf, n)
    out = []
    while True:
        ev = dec.next()
        if ev is None:
            return out
        out.append((ev, bytes(dec.data)))


def test_hostile_random_streams():
    # Random bytes dense in END/ESC: the decoder never raises, never delivers a CoAP frame whose FCS is
    # wrong, and its buffer never grows.
    rng = hgtest.Rng(2024)
    dec = slip.Decoder(128)
    specials = (0xC0, 0xDB, 0xDC, 0xDD, 0xA9, 0x0A, 0x45, 0x60)
    for _ in range(40):
        n = 1 + rng.below(300)
        data = bytearray(rng.bytes(n))
        for i in range(n):
            if rng.below(3) == 0:
                data[i] = rng.choice(specials)
        dec.feed(bytes(data))
        while True:
            ev = dec.next()
            if ev is None:
                break
            if ev == slip.COAP:
                k = len(dec.data)
                assert slip.fcs16(b"\xa9" + bytes(dec._buf[:k + 2])) == slip.FCS_GOOD
            assert len(dec.data) <= 128
    assert len(dec._buf) == 128
    assert dec.errors > 0 and dec.unknown > 0 and dec.bad_escape > 0


def test_frames_survive_interleaved_garbage_text():
    rng = hgtest.Rng(11)
    msgs = []
    stream = bytearray()
    text = bytearray()
    for i in range(30):
        junk = bytearray(rng.bytes(rng.below(40)))
        for j in range(len(junk)):
            if junk[j] in (0xC0, 0xA9):
                junk[j] = 0x20
        stream += junk
        text += junk
        m = bytes((0x40, 0x01, i, rng.below(256))) + rng.bytes(rng.below(60))
        msgs.append(m)
        stream += slip.encode(slip.T_COAP, m)
    stream = bytes(stream)
    for chunk in (1, 17, 700):
        dec = slip.Decoder()
        evs = events(dec, stream, chunk)
        assert [d for k, d in evs if k == slip.COAP] == msgs
        assert b"".join(d for k, d in evs if k == slip.TEXT) == bytes(text)
        assert dec.errors == 0
