"""lib/eapnoob's strict JSON object reader against Python's json (RFC 8259), and the peer and the server core
under grammar-aware fuzzing. Every object json.dumps makes is read with each member's raw bytes decoding to the
same value, and any text our reader accepts Python's json accepts with the same members (so the raw spans the MACs
cover are the members a standard parser sees)."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from eapnoob import wire
from eapnoob.errors import NoobError

# numbers longer than 20 characters are refused by design (bounded parsing; EAP-NOOB has none)
scalars = st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=12) | \
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: len(json.dumps(f)) <= 20)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) |
                      st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)
objects = st.dictionaries(st.text(max_size=8), values, max_size=6)


@given(objects, st.booleans(), st.booleans())
@settings(max_examples=300, deadline=None)
def test_reads_what_json_writes(obj, compact, ascii_only):
    text = json.dumps(obj, separators=(",", ":") if compact else (", ", ": "), ensure_ascii=ascii_only)
    data = text.encode()
    if len(obj) > wire.MAX_MEMBERS or _depth(obj) > wire.MAX_DEPTH:
        return
    msg = wire.Message(data)
    assert {k.decode() for k in msg.spans} == set(obj)  # names are kept decoded, as UTF-8
    for name, (start, end) in msg.spans.items():
        assert json.loads(data[start:end]) == obj[name.decode()]


def _depth(v):
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    return 0


@given(objects, st.data())
@settings(max_examples=300, deadline=None)
def test_accepts_only_what_json_accepts(obj, data):
    text = bytearray(json.dumps(obj, separators=(",", ":")).encode())
    for _ in range(data.draw(st.integers(1, 3))):
        if not text:
            break
        i = data.draw(st.integers(0, len(text) - 1))
        text[i:i + data.draw(st.integers(0, 2))] = data.draw(st.sampled_from(
            [b"", b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"0", b"-", b"e", b"x", b" ", b"\x01", b"tru"]))
    try:
        msg = wire.Message(bytes(text))
    except NoobError as e:
        assert e.code == 1002
        return
    parsed = json.loads(bytes(text))
    assert isinstance(parsed, dict) and len(parsed) == len(msg.spans)


# ---- the peer under grammar-aware fuzzing: members it knows, values of every JSON type --------------------

MEMBERS = ["Type", "PeerId", "Vers", "Cryptosuites", "Dirs", "ServerInfo", "NewNAI", "PKs", "Ns", "SleepTime",
           "NoobId", "MACs", "KeyingMode", "PKs2", "Ns2", "MACs2", "ErrorCode", "ErrorInfo"]
json_values = st.recursive(scalars | st.sampled_from(["07KRU6OgqX0HIeRFldnbSW", "A" * 22, "A" * 43, ""]),
                           lambda inner: st.lists(inner, max_size=3) |
                           st.dictionaries(st.sampled_from(["kty", "crv", "x", "y", "Type"]), inner, max_size=4),
                           max_leaves=8)


@given(st.booleans(), st.lists(st.tuples(st.integers(0, 9), st.dictionaries(st.sampled_from(MEMBERS),
                                                                                 json_values, max_size=6)),
                                   min_size=1, max_size=4))
@settings(max_examples=200, deadline=None)
def test_peer_answers_any_message_without_raising(tmp_path_factory, registered, messages):
    """In OOB Received (the next exchange would be Completion) or Registered (Reconnect next)."""
    from test_eapnoob_server import registered_pair, run

    server, peer = registered_pair(tmp_path_factory.mktemp("fuzz"))
    if registered:
        assert run(server, peer).success
    peer.receive(wire.build(wire.REQUEST, 1, wire.TYPE_IDENTITY))
    peer.receive(wire.build(wire.REQUEST, 2, wire.TYPE_NOOB, b'{"Type":1}'))
    for i, (typ, members) in enumerate(messages):
        body = json.dumps({"Type": typ, **members}, separators=(",", ":")).encode()
        resp = peer.receive(wire.build(wire.REQUEST, 3 + i, wire.TYPE_NOOB, body[:wire.MAX_PACKET - 5]))
        if resp is not None:
            code, _, t, data = wire.parse(resp)
            assert code == wire.RESPONSE and t == wire.TYPE_NOOB
            wire.Message(data)
    assert peer.state in (0, 1, 2, 3, 4)


RESPONSE_MEMBERS = ["Type", "PeerId", "PeerState", "Verp", "Cryptosuitep", "Dirp", "PeerInfo", "PKp", "Np",
                    "NoobId", "MACp", "PKp2", "Np2", "MACp2", "ErrorCode", "ErrorInfo"]


@given(st.integers(0, 2), st.lists(st.dictionaries(st.sampled_from(RESPONSE_MEMBERS), json_values, max_size=7),
                                   min_size=1, max_size=4))
@settings(max_examples=200, deadline=None)
def test_server_answers_any_response_without_raising(peer_state, responses):
    """Whatever the peer sends, the server core answers with EAP packets (or discards), never raises."""
    from hourglass import noob_server as ns
    from test_eapnoob_server import SERVER_INFO

    conv = ns.NoobServer(SERVER_INFO).conversation()
    out = conv.receive(bytes((2, conv.start()[1], 0, 9, 1)) + b"@x.y")
    first = {"Type": 1, "PeerState": peer_state}
    for members in [first] + responses:
        if conv.done or not out:
            break
        body = json.dumps(members, separators=(",", ":")).encode()[:1200]
        out = conv.receive(bytes((2, out[-1][1])) + (5 + len(body)).to_bytes(2, "big") + b"\x38" + body)
        for pkt in out:
            assert pkt[0] in (ns.REQUEST, ns.SUCCESS, ns.FAILURE)
    assert not conv.success
