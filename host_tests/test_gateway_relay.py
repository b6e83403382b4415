"""hourglass gateway's message mapping (Relay) and text sink, checked with aiocoap's codec as the reference."""
from __future__ import annotations

import io
import itertools

import aiocoap
import pytest
from aiocoap import Message, numbers

from hourglass import gateway
from hourglass.gateway import Relay, TextSink

A = ("127.0.0.1", 40001)
B = ("127.0.0.1", 40002)


def det_rng(n):
    return bytes(range(1, n + 1))


def msg(mtype, code, mid, token=b"", **options):
    # aiocoap deprecates mtype/mid/token in the constructor (its library manages them); we need them set.
    m = Message(code=code, **options)
    m.mtype, m.mid, m.token = mtype, mid, token
    return m


def req(mid, token, path="r", mtype=numbers.CON, code=aiocoap.GET, payload=b""):
    return msg(mtype, code, mid, token, uri_path=(path,), payload=payload).encode()


def dec(data):
    return Message.decode(data)


def test_two_clients_same_mid_and_token_are_kept_apart():
    r = Relay(det_rng)
    to_a = r.from_client(req(7, b"tk"), A, 0.0)
    to_b = r.from_client(req(7, b"tk"), B, 0.0)
    ma, mb = dec(to_a), dec(to_b)
    assert ma.mid != mb.mid and ma.token != mb.token
    assert ma.opt.uri_path == mb.opt.uri_path == ("r",)
    # The board answers both (piggybacked); each answer goes back to its client with its own MID and token.
    for m, client, payload in ((mb, B, b"for b"), (ma, A, b"for a")):
        ack = msg(numbers.ACK, aiocoap.CONTENT, m.mid, m.token, payload=payload, content_format=0).encode()
        out, addr = r.from_board(ack, 1.0)
        back = dec(out)
        assert addr == client and back.mid == 7 and back.token == b"tk" and back.payload == payload
        assert back.opt.content_format == 0 and back.mtype == numbers.ACK


def test_retransmission_keeps_mid_and_token():
    r = Relay(det_rng)
    first = r.from_client(req(100, b"\x01\x02\x03"), A, 0.0)
    again = r.from_client(req(100, b"\x01\x02\x03"), A, 2.0)
    assert first == again  # the board sees a duplicate and answers it from its dedup cache


def test_empty_token_gets_a_gateway_token_and_back():
    r = Relay(det_rng)
    m = dec(r.from_client(req(5, b""), A, 0.0))
    assert len(m.token) == gateway.GATEWAY_TOKEN_LEN
    ack = msg(numbers.ACK, aiocoap.CONTENT, m.mid, m.token, payload=b"x").encode()
    out, addr = r.from_board(ack, 0.5)
    assert dec(out).token == b"" and dec(out).mid == 5 and addr == A


def test_separate_response_and_its_ack():
    r = Relay(det_rng)
    m = dec(r.from_client(req(9, b"sep"), A, 0.0))
    empty_ack = msg(numbers.ACK, numbers.EMPTY, m.mid, b"").encode()
    out, addr = r.from_board(empty_ack, 0.1)
    assert addr == A and dec(out).mid == 9 and dec(out).code == numbers.EMPTY
    # The CON response carries the board's own MID and the gateway token.
    con = msg(numbers.CON, aiocoap.CONTENT, 4242, m.token, payload=b"late").encode()
    out, addr = r.from_board(con, 2.0)
    back = dec(out)
    assert addr == A and back.mid == 4242 and back.token == b"sep" and back.mtype == numbers.CON
    # The client's ACK to it uses the board's MID, so it passes through untouched.
    client_ack = msg(numbers.ACK, numbers.EMPTY, 4242, b"").encode()
    assert r.from_client(client_ack, A, 2.1) == client_ack


def test_notifications_route_by_token_and_rst_passes():
    r = Relay(det_rng)
    m = dec(r.from_client(req(1, b"ob", path="obs"), A, 0.0))
    r.from_client(req(1, b"ob", path="obs"), B, 0.0)  # B observes with the same MID and token
    for seq in range(3):
        n = msg(numbers.NON, aiocoap.CONTENT, 900 + seq, m.token, observe=seq, payload=b"%d" % seq).encode()
        out, addr = r.from_board(n, 10.0 + seq)
        assert addr == A and dec(out).opt.observe == seq and dec(out).token == b"ob"
    rst = msg(numbers.RST, numbers.EMPTY, 902, b"").encode()
    assert r.from_client(rst, A, 20.0) == rst  # cancels the observation on the board (its MID)


def test_pings_both_ways():
    r = Relay(det_rng)
    ping = msg(numbers.CON, numbers.EMPTY, 77, b"").encode()
    to_board = dec(r.from_client(ping, A, 0.0))
    assert to_board.code == numbers.EMPTY and to_board.token == b""
    rst = msg(numbers.RST, numbers.EMPTY, to_board.mid, b"").encode()
    out, addr = r.from_board(rst, 0.1)
    assert addr == A and dec(out).mid == 77 and dec(out).mtype == numbers.RST
    # The board pings the gateway, its only peer: the gateway answers with RST itself.
    kind, reply = r.from_board(msg(numbers.CON, numbers.EMPTY, 0x1234, b"").encode(), 0.2)
    assert kind == "reply" and reply == bytes((0x70, 0x00, 0x12, 0x34))


def test_unroutable_and_malformed_are_dropped():
    r = Relay(det_rng)
    for bad in (b"", b"\x40\x01\x00", b"\x80\x01\x00\x01", b"\x49\x01\x00\x01" + bytes(9), b"\x42\x01\x00\x01\xaa"):
        assert r.from_client(bad, A, 0.0) is None
        assert r.from_board(bad, 0.0) is None
    # A request from the board (nobody upstream), a response with an unknown token, an ACK for a MID the
    # gateway never used, a piggybacked response or a CON response from a client.
    assert r.from_board(req(1, b"zz"), 0.0) is None
    assert r.from_board(msg(numbers.NON, aiocoap.CONTENT, 1, b"nope").encode(), 0) is None
    assert r.from_board(msg(numbers.ACK, aiocoap.CONTENT, 555, b"").encode(), 0) is None
    assert r.from_client(msg(numbers.ACK, aiocoap.CONTENT, 5, b"").encode(), A, 0) is None
    assert r.from_client(msg(numbers.CON, aiocoap.CONTENT, 5, b"").encode(), A, 0) is None
    assert r.from_board(msg(numbers.NON, numbers.EMPTY, 5, b"").encode(), 0) is None
    assert r.dropped == 16


def test_mid_mapping_expires_after_exchange_lifetime():
    r = Relay(det_rng)
    g1 = dec(r.from_client(req(3, b"a"), A, 0.0)).mid
    g2 = dec(r.from_client(req(3, b"a"), A, gateway.EXCHANGE_LIFETIME + 1)).mid
    assert g1 != g2  # after the lifetime the client may reuse MID 3 for a new request
    late_ack = msg(numbers.ACK, aiocoap.CONTENT, g1, b"").encode()
    assert r.from_board(late_ack, gateway.EXCHANGE_LIFETIME + 2) is None


def test_tokens_expire_when_idle_and_tables_stay_bounded(monkeypatch):
    monkeypatch.setattr(gateway, "TABLE_LIMIT", 50)
    r = Relay(det_rng)
    m = dec(r.from_client(req(1, b"old"), A, 0.0))
    for i in range(200):
        r.from_client(req(1000 + i, i.to_bytes(2, "big")), B, 1.0)
    assert len(r.by_client_mid) <= 51 and len(r.by_gmid) <= 51
    assert len(r.by_client_token) <= 51 and len(r.by_gtoken) <= 51
    n = msg(numbers.NON, aiocoap.CONTENT, 1, m.token).encode()
    assert r.from_board(n, 2.0) is None  # evicted as least recently used


def test_notifications_keep_an_observe_token_alive():
    r = Relay(det_rng)
    m = dec(r.from_client(req(1, b"ob"), A, 0.0))
    n = msg(numbers.NON, aiocoap.CONTENT, 1, m.token).encode()
    t = 0.0
    for _ in range(5):  # a notification every 40 minutes for 3+ hours: the token never idles an hour
        t += 2400.0
        r.from_client(req(2, b"other"), B, t)  # traffic that runs the expiry
        assert r.from_board(n, t) is not None


def test_gateway_mid_wraps_and_evicts_the_oldest():
    r = Relay(lambda n: b"\xff" * n)
    mids = [dec(r.from_client(req(i, b""), A, 0.0)).mid for i in range(3)]
    assert mids == [0xFFFF, 0, 1]


@pytest.mark.parametrize("chunks, want", [
    ([b"tick 1\r\n", "t\u00e9st\n".encode()], "tick 1\r\nt\u00e9st\n"),
    ([b"t\xc3", b"\xa9st\n"], "t\u00e9st\n"),  # a UTF-8 sequence split across reads
    ([b"bad \xff byte\n"], "bad \ufffd byte\n"),
    ([b"\x1b[2J\x07ok\t\n"], "\\x1b[2J\\x07ok\t\n"),  # terminal controls shown, not obeyed
])
def test_text_sink(chunks, want):
    out, log = io.StringIO(), io.StringIO()
    sink = TextSink(out, log)
    for c in chunks:
        sink.write(memoryview(c))
    assert out.getvalue() == want and log.getvalue() == want
    assert sink.nbytes == sum(len(c) for c in chunks)


def test_describe_and_parse_address():
    assert gateway.describe(req(258, b"\xab")) == "CON 0.01 mid=258 token=ab (7 B)"
    assert gateway.describe(b"\x60") == "<1 bytes>"
    assert gateway.parse_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert gateway.parse_address("[::1]:5683") == ("::1", 5683)
    for bad in ("localhost", "1.2.3.4:x", "h:70000"):
        with pytest.raises(ValueError):
            gateway.parse_address(bad)


def test_rewrite_preserves_everything_but_mid_and_token():
    # Options and payload must pass byte-exact, whatever the token length change.
    for old_tok, new_tok in itertools.product((b"", b"\x01", bytes(8)), (b"", b"\x02\x03\x04\x05")):
        m = msg(numbers.NON, aiocoap.PUT, 1, old_tok, uri_path=("a", "b"), uri_query=("x=1",),
                payload=b"\xc0\xdb" * 20)
        out = gateway._rewrite(m.encode(), 0xBEEF, new_tok)
        back = dec(out)
        assert back.mid == 0xBEEF and back.token == new_tok and back.payload == m.payload
        assert back.opt.uri_path == ("a", "b") and back.opt.uri_query == ("x=1",)
        assert out[4 + len(new_tok):] == m.encode()[4 + len(old_tok):]


UP = ("127.0.0.1", 5683)


def test_board_requests_go_upstream_and_answers_come_back():
    r = Relay(det_rng, upstream=UP)
    get = req(0x1111, b"bd", path="time")
    assert r.from_board(get, 0.0) == (get, UP)  # unchanged: the board's MID and token are its own
    piggy = msg(numbers.ACK, aiocoap.CONTENT, 0x1111, b"bd", payload=b"noon").encode()
    assert r.from_client(piggy, UP, 0.1) == piggy
    # A separate response: empty ACK passes, the CON response gets a gateway MID, the board's ACK maps back.
    assert r.from_client(msg(numbers.ACK, numbers.EMPTY, 0x1111).encode(), UP, 0.2) is not None
    con = msg(numbers.CON, aiocoap.CONTENT, 0x7777, b"bd", payload=b"later").encode()
    to_board = dec(r.from_client(con, UP, 1.0))
    assert to_board.token == b"bd" and to_board.payload == b"later" and to_board.mid != 0x7777
    out, addr = r.from_board(msg(numbers.ACK, numbers.EMPTY, to_board.mid).encode(), 1.1)
    assert addr == UP and dec(out).mid == 0x7777 and dec(out).token == b""
    # Other clients still cannot answer the board's requests.
    assert r.from_client(piggy, A, 0.1) is None
    assert r.from_client(con, A, 1.0) is None


def test_without_upstream_board_requests_are_dropped():
    r = Relay(det_rng)
    assert r.from_board(req(1, b"x"), 0.0) is None and r.dropped == 1
