# The Reconnect Exchange of the EAP-NOOB peer (RFC 9140 section 3.4.2): KeyingMode 1 (new keys from Kz),
# 2 (ECDHE, same cryptosuite) and 3 (ECDHE, new cryptosuite), with the KzPrev rollback of a lost upgrade.
from crypto.util import ct_equal

from eapnoob import REGISTERED
from eapnoob.errors import E_HMAC, E_INVALID_DATA, E_NO_VERSION, E_SERVER_INFO, E_UNEXPECTED_PEERID, NoobError
from eapnoob import keys
from eapnoob.conversation import X_RECONNECT, choose_suite
from eapnoob.record import F_CS, F_CS_PREV, F_KZ, F_KZ_PREV, F_NAI, F_PEERID, F_STATE, as_int, dec
from eapnoob.wire import MAX_INFO, b64d, check_text, json_b64


def on_type7(peer, conv, msg, now):
    conv.exch = X_RECONNECT
    msg.check_members((b"Type", b"Vers", b"PeerId", b"Cryptosuites"), (b"NewNAI", b"ServerInfo"))
    conv.peer_id = peer.rec[F_PEERID]
    if msg.raw(b"PeerId") != conv.peer_id:
        raise NoobError(E_UNEXPECTED_PEERID, "unexpected PeerId")
    if 1 not in msg.int_list(b"Vers"):
        raise NoobError(E_NO_VERSION, "no common version")
    # Both suites are 128-bit secure, so neither is "weaker" (RFC 9140 section 3.4.2): any we accept will do
    conv.cs = choose_suite(peer, msg.int_list(b"Cryptosuites"))
    conv.sinfo = b'""'
    if msg.has(b"ServerInfo"):
        try:
            conv.sinfo = msg.object(b"ServerInfo", MAX_INFO)
        except NoobError:
            raise NoobError(E_SERVER_INFO, "bad ServerInfo")
    conv.nai = None
    if msg.has(b"NewNAI"):
        check_text(msg, b"NewNAI", 253)
        conv.nai = msg.raw(b"NewNAI")
    conv.vers = msg.raw(b"Vers")
    conv.css = msg.raw(b"Cryptosuites")
    conv.expect = (8,)
    return b'{"Type":7,"Verp":1,"PeerId":' + conv.peer_id + b',"Cryptosuitep":' + dec(conv.cs) + b"}"


def on_type8(peer, conv, msg, now):
    msg.check_members((b"Type", b"PeerId", b"KeyingMode", b"Ns2"), (b"PKs2",))
    km = msg.int(b"KeyingMode", 1, 3)
    cs = conv.cs
    r = peer.rec
    if km < 3 and cs != as_int(r[F_CS]) and cs != as_int(r.get(F_CS_PREV)):
        raise NoobError(E_INVALID_DATA, "KeyingMode %d with a new cryptosuite" % km)
    pks2 = msg.raw(b"PKs2")
    conv.pks2 = conv.pkp2 = b'""'
    if km == 1:
        # RFC 9140 leaves PKs2 out in KeyingMode 1; the authors' generator writes "PKs2":"", accepted as absent
        if pks2 is not None and pks2 != b'""':
            raise NoobError(E_INVALID_DATA, "PKs2 in KeyingMode 1")
    else:
        pub = keys.parse_jwk(cs, msg.object(b"PKs2", 300))
        priv, own = keys.keypair(cs, peer.rng)  # fresh for every Reconnect (RFC 9140 section 3.4.2)
        conv.pks2 = pks2
        conv.pkp2 = keys.jwk(cs, own)
        conv.z = keys.ecdh(cs, priv, pub)
    conv.ns2 = msg.raw(b"Ns2")
    msg.b64(b"Ns2", 32)
    conv.np2 = json_b64(peer.rng(32))
    conv.km = km
    conv.expect = (9,)
    out = b'{"Type":8,"PeerId":' + conv.peer_id
    if km > 1:
        out += b',"PKp2":' + conv.pkp2
    return out + b',"Np2":' + conv.np2 + b"}"


def _reconnect_keys(conv, kz):
    np2 = b64d(conv.np2[1:-1], 32)
    ns2 = b64d(conv.ns2[1:-1], 32)
    if conv.km == 1:
        return keys.kdf(kz, np2, ns2, b"")
    return keys.kdf(conv.z, np2, ns2, kz)


def on_type9(peer, conv, msg, now):
    msg.check_members((b"Type", b"PeerId", b"MACs2"))
    macs2 = msg.b64(b"MACs2", 32)
    r = dict(peer.rec)
    nai = conv.nai or r[F_NAI]
    # RFC 9140 section 3.3.2 puts the NAI (NewNAI, else the stored one) in the MACs2/MACp2 input; the authors'
    # transcripts, which predate the RFC, put "" there: reconnect_mac_nai=False reproduces them
    parts = (conv.vers, b"1", conv.peer_id, conv.css, b'""', conv.sinfo, dec(conv.cs), b'""',
             nai if peer.reconnect_mac_nai else b'""', b'""', dec(conv.km), conv.pks2, conv.ns2, conv.pkp2,
             conv.np2, b'""')
    out = _reconnect_keys(conv, r[F_KZ])
    if not ct_equal(macs2, keys.mac(out[224:256], b"2", parts)):
        out = None
        if F_KZ_PREV in r:  # RFC 9140 section 3.4.2 step 2: did the server miss our last upgrade?
            out = _reconnect_keys(conv, r[F_KZ_PREV])
            if ct_equal(macs2, keys.mac(out[224:256], b"2", parts)):
                r[F_CS] = r[F_CS_PREV]
                r[F_KZ] = r[F_KZ_PREV]
            else:
                out = None
        if out is None:
            raise NoobError(E_HMAC, "MACs2 verification failed")
    r.pop(F_CS_PREV, None)
    r.pop(F_KZ_PREV, None)
    if conv.km == 3:
        r[F_CS_PREV] = r[F_CS]
        r[F_KZ_PREV] = r[F_KZ]
        r[F_CS] = dec(conv.cs)
        r[F_KZ] = out[288:320]
    r[F_NAI] = nai
    r[F_STATE] = dec(REGISTERED)
    macp2 = keys.mac(out[256:288], b"1", parts)
    answer = b'{"Type":9,"PeerId":' + conv.peer_id + b',"MACp2":' + json_b64(macp2) + b"}"
    ks = (out[0:64], out[64:128], out[128:192], out[192:224])
    peer.save(r)  # last, after the answer is made: a MemoryError leaves the state as it was (see eapnoob.conversation)
    peer.keys = ks
    return answer
