"""Our RFC 7252 codec against aiocoap's, on random messages (hypothesis): same bytes out, same fields back."""
from __future__ import annotations


import pytest
from hypothesis import given, settings, strategies as st

from coap import MessageError
from coap.msg import Message, decode

aiocoap = pytest.importorskip("aiocoap")
from aiocoap.message import Message as AMessage  # noqa: E402
from aiocoap.numbers.codes import Code  # noqa: E402
from aiocoap.numbers.types import Type  # noqa: E402
from aiocoap.numbers.optionnumbers import OptionNumber  # noqa: E402
from aiocoap.optiontypes import OpaqueOption  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # aiocoap: mtype/mid/token in Message()

# Options as opaque bytes: numbers chosen so aiocoap treats them as opaque too (unknown, elective and
# critical, with extended deltas), plus repeated Uri-Path/Uri-Query/ETag. Not 13: aiocoap knows it as
# Uri-Path-Abbrev, a uint, and drops a zero byte from its value.
OPAQUE = st.sampled_from([4, 9, 18, 26, 100, 268, 269, 270, 1000, 2049, 65000])
option = st.one_of(
    st.tuples(OPAQUE, st.binary(max_size=300)),
    st.tuples(st.just(11), st.text(alphabet="abcxyz-._~", max_size=20).map(str.encode)),
    st.tuples(st.just(15), st.text(alphabet="abc=&xyz", max_size=20).map(str.encode)),
)
messages = st.tuples(
    st.integers(0, 3), st.sampled_from([1, 2, 3, 4, 65, 68, 69, 132, 160]), st.integers(0, 0xFFFF),
    st.binary(max_size=8), st.lists(option, max_size=8), st.binary(max_size=200))


def ours(t, code, mid, token, opts, payload) -> bytes:
    m = Message(t, code, mid, token, payload)
    for n, v in opts:
        m.add(n, v)
    return bytes(m.encode())


@settings(max_examples=300, deadline=None)
@given(messages)
def test_same_bytes_as_aiocoap(msg):
    t, code, mid, token, opts, payload = msg
    enc = ours(*msg)
    # aiocoap decodes our bytes to the same message and encodes it back identically.
    a = AMessage.decode(enc)
    assert (a.mtype, int(a.code), a.mid, a.token, a.payload) == (Type(t), code, mid, token, payload)
    assert [(int(o.number), o.encode()) for o in a.opt.option_list()] == \
        [o for _, o in sorted(enumerate(opts), key=lambda x: (x[1][0], x[0]))]
    # aiocoap builds the same message into the same bytes.
    b = AMessage(mtype=Type(t), code=Code(code), mid=mid, token=token, payload=payload)
    for n, v in opts:
        b.opt.add_option(OpaqueOption(OptionNumber(n), v))
    assert b.encode() == enc
    # Options come back in number order, repeated ones in the order they were added.
    d = decode(enc)
    want = sorted(enumerate(opts), key=lambda x: (x[1][0], x[0]))
    assert [(n, bytes(v)) for n, v in d.items()] == [o for _, o in want]
    assert bytes(d.payload) == payload and d.token == token and d.mid == mid


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=64))
def test_garbage_agrees_with_aiocoap(data):
    # Where aiocoap rejects a datagram we must too (and vice versa), except what RFC 7252 lets a parser
    # refuse that aiocoap accepts: reserved code classes 1/6/7, an empty message carrying bytes, token
    # length nibbles 9-15 and a truncated token, a payload marker with no payload.
    try:
        d = decode(data)
        ok = True
    except MessageError:
        ok = False
    try:
        a = AMessage.decode(data)
        aok = True
    except UnicodeDecodeError:  # aiocoap also checks string options' UTF-8; the codec layer does not
        return
    except Exception:
        aok = False
    if ok:
        assert aok, data.hex()
        assert bytes(d.payload) == a.payload and d.mid == a.mid and d.token == a.token
    elif aok:
        code = data[1]
        tkl = data[0] & 15
        assert (code >> 5) in (1, 6, 7) or (code == 0 and len(data) > 4) or 4 + tkl > len(data) or tkl > 8 \
            or data[-1:] == b"\xff", data.hex()


def test_code_constants_match_aiocoap():
    from coap import defs
    assert defs.CONTENT == int(Code.CONTENT) and defs.CONTINUE == int(Code.CONTINUE)
    assert defs.INCOMPLETE == int(Code.REQUEST_ENTITY_INCOMPLETE)
    assert defs.TOO_LARGE == int(Code.REQUEST_ENTITY_TOO_LARGE)
    assert defs.BAD_OPTION == int(Code.BAD_OPTION)
