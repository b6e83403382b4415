# EAP-NOOB against the RFC 9140 authors' transcripts (host_tests/vectors/eap-noob/, from their example-message
# script with the RFC 7748 section 6.1 X25519 keys and the RFC 5903 section 8.1 P-256 keys): every intermediate
# value, then our peer run through each transcript's four exchanges with those keys and nonces injected.
import hgtest
from hgtest import unhex

from eapnoob import keys, wire
MP_HEAP = "160k"  # measured: the transcripts compiled from source fail at 128k on the VM

FILES = ("cs1_1_0", "cs1_1_1", "cs1_2_1", "cs2_1_1", "cs2_2_0", "cs2_2_1")
# (server private, peer private) per cryptosuite: Alice/Bob of RFC 7748, initiator/responder of RFC 5903
PRIV = {
    1: (unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
        unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")),
    2: (unhex("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433"),
        unhex("C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53")),
}


def load(name):
    """A transcript as {"steps": [(kind, text)], "values": {name: value}, "exchanges": [title]} where kind is
    identity | request | response | oob."""
    steps = []
    values = {}
    titles = []
    pending = None
    in_messages = True
    f = open(hgtest.vector_path("eap-noob/eap-noob_" + name + ".txt"))
    for line in f:
        line = line.rstrip()
        if line.startswith("======"):
            title = line.strip("= ")
            if title.startswith("Inputs"):
                in_messages = False
            elif title == "OOB Step":
                pending = "oob"
            elif in_messages:
                titles.append(title)
            continue
        if not line:
            continue
        if pending and line.startswith("   "):
            if in_messages or pending == "oob":
                steps.append((pending, line.strip()))
            else:
                values[pending] = line.strip()
            pending = None
        elif not in_messages and line.endswith(":"):
            pending = line[:-1]  # "MACs2 input", "Old Kz", ...
        elif in_messages and line.endswith(":"):
            pending = ("identity" if line.startswith("Identity") else
                       "request" if line.startswith("EAP request") else "response")
        elif " = " in line:
            key, value = line.split(" = ", 1)
            key = " ".join(key.split())
            if key.startswith("NoobId (Aalto"):
                key = "NoobId aalto"
            elif key.startswith("NoobId (alt"):
                key = "NoobId json"
            values[key] = value.strip()
    f.close()
    return {"steps": steps, "values": values, "exchanges": titles, "name": name}


def _suites(t):
    """(Initial cryptosuite, Reconnect cryptosuite) from the peer's type 2 and type 7 responses."""
    out = []
    for kind, text in t["steps"]:
        if kind == "response" and (text.startswith('{"Type":2,') or text.startswith('{"Type":7,')):
            out.append(wire.Message(text.encode()).int(b"Cryptosuitep", 1, 2))
    return out


def _b64(text, n):
    return wire.b64d(text, n)


def _msg(t, typ, response):
    for kind, text in t["steps"]:
        if kind == ("response" if response else "request") and text.startswith('{"Type":%d,' % typ):
            return wire.Message(text.encode())
    raise AssertionError("no type %d message" % typ)


def check_values(name):
    t = load(name)
    v = t["values"]
    cs1, cs2 = _suites(t)
    srv, peer = PRIV[cs1]
    pks = keys.parse_jwk(cs1, _msg(t, 3, False).raw(b"PKs"))
    assert keys.parse_jwk(cs1, _msg(t, 3, True).raw(b"PKp")) == keys.keypair(cs1, lambda n: peer)[1]
    assert pks == keys.keypair(cs1, lambda n: srv)[1]
    z = keys.ecdh(cs1, peer, pks)
    assert z == unhex(v["Z"]), name
    np = _msg(t, 3, True).b64(b"Np", 32)
    ns = _msg(t, 3, False).b64(b"Ns", 32)
    oob = v["OOB"].split("&")
    noob_b64 = oob[1][2:].encode()
    noob = _b64(noob_b64, 16)
    assert unhex(v["Completion KDF otherinfo(hex)"]) == b"EAP-NOOB" + np + ns + noob
    out = keys.kdf(z, np, ns, noob)
    assert out[0:64] == unhex(v["KDF_out[0:64] MSK"])
    assert out[64:128] == unhex(v["KDF_out[64:128] EMSK"])
    assert out[128:192] == unhex(v["KDF_out[128:192] AMSK"])
    assert out[192:224] == unhex(v["KDF_out[192:224] MethodId"])
    assert out[224:256] == unhex(v["Kms"])
    assert out[256:288] == unhex(v["Kmp"])
    kz = out[288:320]
    assert kz == unhex(v["Kz"])
    hoob_in = v["Hoob input"].encode()
    assert keys.hoob(2, _split(hoob_in)[1:]) == _b64(v["Hoob (b64)"], 16)
    assert keys.array(b"2", _split(hoob_in)[1:]) == hoob_in
    assert wire.b64e(keys.hoob(2, _split(hoob_in)[1:])).decode() == oob[2][2:]
    rfc_id, aalto_id = keys.noob_ids(noob_b64)
    assert aalto_id == _b64(v["NoobId aalto"], 16)
    assert rfc_id == _b64(v["NoobId json"], 16)
    macs_in = _split(v["MACs input"].encode())
    assert keys.mac(out[224:256], b"2", macs_in[1:]) == _b64(v["MACs (b64)"], 32)
    assert keys.mac(out[256:288], b"1", macs_in[1:]) == _msg(t, 6, True).b64(b"MACp", 32)
    # Reconnect
    km = int(v["KeyingMode"])
    np2 = _msg(t, 8, True).b64(b"Np2", 32)
    ns2 = _msg(t, 8, False).b64(b"Ns2", 32)
    if km == 1:
        assert unhex(v["Reconnect KDF2 otherinfo(hex)"]) == b"EAP-NOOB" + np2 + ns2
        out2 = keys.kdf(kz, np2, ns2, b"")
    else:
        srv2, peer2 = PRIV[cs2]
        z2 = keys.ecdh(cs2, peer2, keys.parse_jwk(cs2, _msg(t, 8, False).raw(b"PKs2")))
        assert keys.ecdh(cs2, srv2, keys.parse_jwk(cs2, _msg(t, 8, True).raw(b"PKp2"))) == z2
        assert unhex(v["Reconnect KDF2 otherinfo(hex)"]) == b"EAP-NOOB" + np2 + ns2 + kz
        out2 = keys.kdf(z2, np2, ns2, kz)
    assert out2[0:64] == unhex(v["Reconnect MSK"])
    assert out2[64:128] == unhex(v["Reconnect EMSK"])
    assert out2[224:256] == unhex(v["Kms2"])
    assert out2[256:288] == unhex(v["Kmp2"])
    if km == 3:
        assert out2[288:320] == unhex(v["Kz2"])
    else:
        assert v["Kz2"] == "(n/a)"
    mac2_in = _split(v["MACs2 input"].encode())[1:]  # "" where RFC 9140 puts the NAI
    assert mac2_in == _split(v["MACp2 input"].encode())[1:]
    assert keys.mac(out2[224:256], b"2", mac2_in) == _b64(v["MACs2"], 32)
    assert keys.mac(out2[256:288], b"1", mac2_in) == _b64(v["MACp2"], 32)
    return t


def _split(array):
    """Top-level elements of a JSON array, raw (the transcripts print the Hoob/MAC inputs)."""
    m = wire.Message(b'{"a":' + array + b"}")
    raw = m.raw(b"a")
    out = []
    i = 1
    while raw[i] != 0x5D:
        end = wire._value(raw, i, 1)
        out.append(raw[i:end])
        i = end + 1 if raw[end] == 0x2C else end
    return out


def test_cs1_1_0_values():
    check_values("cs1_1_0")


def test_cs1_1_1_values():
    check_values("cs1_1_1")


def test_cs1_2_1_values():
    check_values("cs1_2_1")


def test_cs2_1_1_values():
    check_values("cs2_1_1")


def test_cs2_2_0_values():
    check_values("cs2_2_0")


def test_cs2_2_1_values():
    check_values("cs2_2_1")


