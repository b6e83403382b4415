# oscore.config on both runtimes: the "oscore" member of config.json as `hourglass oscore` writes it (hex
# strings) makes the same context as the raw key material; a member missing or not hex is an OscoreError.
import hgtest
from oscore import OscoreError
from oscore.config import context
from oscore import Context
MP_HEAP = "96k"  # passes at 64k on the bare VM; the HIL runner's mount costs more

CFG = {"secret": "0102030405060708090a0b0c0d0e0f10", "salt": "9e7ca92223786340", "sender_id": "01",
       "recipient_id": "", "id_context": "37cbf3210017a2d3"}


def test_config_makes_the_context():
    c = context(CFG)
    d = Context(bytes(range(1, 17)), b"\x9e\x7c\xa9\x22\x23\x78\x63\x40", b"\x01", b"",
                b"\x37\xcb\xf3\x21\x00\x17\xa2\xd3")
    assert (c.sender_key, c.recipient_key, c.sender_base, c.recipient_base) == \
        (d.sender_key, d.recipient_key, d.sender_base, d.recipient_base)
    assert c.id_context == d.id_context and c.store is None
    plain = dict(CFG)
    del plain["id_context"]
    del plain["salt"]
    assert context(plain).id_context is None


def test_bad_config_is_an_oscore_error():
    for bad in ({}, {"secret": "zz", "sender_id": "01", "recipient_id": "02"},
                {"secret": "00", "sender_id": "01"}, {"secret": 5, "sender_id": "01", "recipient_id": "02"},
                {"secret": "00", "sender_id": "0102030405060708", "recipient_id": ""}, None):
        hgtest.raises(OscoreError, context, bad)
