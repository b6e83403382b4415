# The bootstrap exchanges of the EAP-NOOB peer (RFC 9140 sections 3.2.2-3.2.5): Initial, Waiting, the OOB step
# in both directions and Completion. Handlers take the Peer, the conversation and the message; loaded by
# eapnoob.conversation (and by eapnoob.peer for the OOB step) only while the device is not registered.
import json

from crypto.util import ct_equal

from eapnoob import OOB_RECEIVED, REGISTERED, WAITING
from eapnoob.errors import (E_HMAC, E_INVALID_DATA, E_NO_DIRECTION, E_NO_VERSION, E_SERVER_INFO,
                            E_UNRECOGNIZED_NOOBID, NoobError)
from eapnoob import keys
from eapnoob.conversation import X_COMPLETION, X_INITIAL, X_WAITING, choose_suite
from eapnoob.record import (F_CS, F_CSS, F_DIRP, F_DIRS, F_KZ, F_NAI, F_NOOBS, F_NP, F_NS, F_PEERID, F_PKP,
                            F_PKS, F_RETRIES, F_RNOOB, F_SINFO, F_SLEEP, F_STATE, F_VERP, F_VERS, F_Z, as_int, dec)
from eapnoob.wire import MAX_INFO, b64d, b64e, check_text, json_b64, json_str


def _peer_id_raw(msg):
    check_text(msg, b"PeerId", 128)
    return msg.raw(b"PeerId")


def on_type2(peer, conv, msg, now):
    conv.exch = X_INITIAL
    msg.check_members((b"Type", b"Vers", b"PeerId", b"Cryptosuites", b"Dirs", b"ServerInfo"), (b"NewNAI",))
    conv.peer_id = _peer_id_raw(msg)
    if 1 not in msg.int_list(b"Vers"):
        raise NoobError(E_NO_VERSION, "no common version")
    conv.cs = choose_suite(peer, msg.int_list(b"Cryptosuites"))
    dirp = msg.int(b"Dirs", 1, 3) & peer.dirs
    if not dirp:
        raise NoobError(E_NO_DIRECTION, "no common OOB direction")
    try:
        sinfo = msg.object(b"ServerInfo", MAX_INFO)
    except NoobError:
        raise NoobError(E_SERVER_INFO, "bad ServerInfo")
    if msg.has(b"NewNAI"):
        nai = check_text(msg, b"NewNAI", 253)
        if nai.count("@") > 1:
            raise NoobError(E_INVALID_DATA, "bad NewNAI")
        conv.nai = msg.raw(b"NewNAI")
    else:
        conv.nai = json_str(peer.identity())
    conv.init = {F_VERS: msg.raw(b"Vers"), F_CSS: msg.raw(b"Cryptosuites"), F_DIRS: msg.raw(b"Dirs"),
                 F_SINFO: sinfo, F_DIRP: dec(dirp)}
    conv.expect = (3,)
    return (b'{"Type":2,"Verp":1,"PeerId":' + conv.peer_id + b',"Cryptosuitep":' + dec(conv.cs) +
            b',"Dirp":' + dec(dirp) + b',"PeerInfo":' + peer.peer_info + b"}")


def _sleep(msg, rec):
    if msg.has(b"SleepTime"):
        rec[F_SLEEP] = dec(msg.int(b"SleepTime", 0, 3600))


def on_type3(peer, conv, msg, now):
    msg.check_members((b"Type", b"PeerId", b"PKs", b"Ns"), (b"SleepTime",))
    cs = conv.cs
    pks = msg.object(b"PKs", 300)
    pub = keys.parse_jwk(cs, pks)
    msg.b64(b"Ns", 32)
    priv, own = keys.keypair(cs, peer.rng)
    np = peer.rng(32)
    pkp = keys.jwk(cs, own)
    rec = conv.init
    rec[F_STATE] = dec(WAITING)
    rec[F_PEERID] = conv.peer_id
    rec[F_NAI] = conv.nai
    rec[F_VERP] = b"1"
    rec[F_CS] = dec(cs)
    rec[F_PKS] = pks
    rec[F_NS] = msg.raw(b"Ns")
    rec[F_PKP] = pkp
    rec[F_NP] = json_b64(np)
    rec[F_Z] = keys.ecdh(cs, priv, pub)
    _sleep(msg, rec)
    conv.init = None
    out = b'{"Type":3,"PeerId":' + conv.peer_id + b',"PKp":' + pkp + b',"Np":' + rec[F_NP] + b"}"
    # the answer is made before the state is saved: a MemoryError leaves the state as it was (see eapnoob.conversation)
    peer.save(rec)  # Waiting for OOB (1): the Initial Exchange is complete on our side
    return out


def _live_noobs(peer, now):
    """[(noob, time)] of the Noobs we sent that have not expired."""
    blob = peer.rec.get(F_NOOBS, b"")
    out = []
    for i in range(0, len(blob) - 23, 24):
        t = int.from_bytes(blob[i + 16:i + 24], "big")
        if now - t < peer.noob_timeout:
            out.append((blob[i:i + 16], t))
    return out


def _set_noobs(rec, noobs):
    rec[F_NOOBS] = b"".join(n + int(t).to_bytes(8, "big") for n, t in noobs)


def on_type4(peer, conv, msg, now):
    conv.exch = X_WAITING
    msg.check_members((b"Type", b"PeerId"), (b"SleepTime",))
    rec = dict(peer.rec)
    _sleep(msg, rec)
    # RFC 9140 section 3.2.5: after the Waiting Exchange, drop the sent Noobs older than NoobTimeout
    _set_noobs(rec, _live_noobs(peer, now))
    if rec != peer.rec:
        peer.save(rec)
    return b'{"Type":4,"PeerId":' + rec[F_PEERID] + b"}"


def _oob_parts(peer, noob):
    r = peer.rec
    return (r[F_VERS], r[F_VERP], r[F_PEERID], r[F_CSS], r[F_DIRS], r[F_SINFO], r[F_CS], r[F_DIRP],
            r[F_NAI], peer.peer_info, b"0", r[F_PKS], r[F_NS], r[F_PKP], r[F_NP], json_b64(noob))


def _dirp(peer):
    return as_int(peer.rec.get(F_DIRP)) or 0


def oob_message(peer, now):
    """The peer -> server OOB message (RFC 9140 Appendix D) for the user to deliver: the server's URL from
    ServerInfo with ?P=<PeerId>&N=<Noob>&H=<Hoob>, or the bare query when ServerInfo names no URL. A new
    Noob is made every NoobTimeout / 2 (the RECOMMENDED NoobInterval); None outside Waiting for OOB."""
    if peer.state != WAITING or not _dirp(peer) & 1:
        return None
    noobs = _live_noobs(peer, now)
    if not noobs or now - noobs[-1][1] >= peer.noob_timeout // 2:
        noobs = noobs[-3:] + [(peer.rng(16), now)]
        rec = dict(peer.rec)
        _set_noobs(rec, noobs)
        peer.save(rec)
    noob = noobs[-1][0]
    query = ("P=" + _pct(peer.peer_id) + "&N=" + b64e(noob).decode() + "&H=" +
             b64e(keys.hoob(1, _oob_parts(peer, noob))).decode())
    url = _server_url(peer)
    return url + ("&" if "?" in url else "?") + query if url else query


def _server_url(peer):
    try:
        info = json.loads(peer.rec[F_SINFO])
    except ValueError:
        return None
    # "ServerURL" is RFC 9140's name; "Url" the draft-era one the authors' transcripts still use
    url = info.get("ServerURL") or info.get("Url")
    return url if type(url) is str and url.startswith("https://") else None


def accept_oob(peer, text):
    """A server -> peer OOB message the user entered (a URL or just P=..&N=..&H=..). True if accepted
    (-> OOB Received); a rejected one leaves the state alone until OobRetries of them (-> Unregistered)."""
    if peer.state != WAITING or not _dirp(peer) & 2:
        return False
    fields = _parse_oob(text)
    ok = False
    if fields and fields.get("P") == peer.peer_id:
        try:
            noob = b64d(fields.get("N", ""), 16)
            ok = ct_equal(b64d(fields.get("H", ""), 16), keys.hoob(2, _oob_parts(peer, noob)))
        except NoobError:
            pass
    rec = dict(peer.rec)
    if ok:
        rec[F_STATE] = dec(OOB_RECEIVED)
        rec[F_RNOOB] = noob
        rec.pop(F_RETRIES, None)
        peer.save(rec)
        return True
    retries = (as_int(rec.get(F_RETRIES)) or 0) + 1
    if retries >= peer.oob_retries:
        peer.unregister()
    else:
        rec[F_RETRIES] = dec(retries)
        peer.save(rec)
    return False


def on_type5(peer, conv, msg, now):
    conv.exch = X_COMPLETION
    msg.check_members((b"Type", b"PeerId"))
    conv.noob = peer.rec[F_RNOOB]
    conv.expect = (6,)
    noob_id = keys.noob_ids(b64e(conv.noob))[0]
    return b'{"Type":5,"PeerId":' + peer.rec[F_PEERID] + b',"NoobId":' + json_b64(noob_id) + b"}"


def on_type6(peer, conv, msg, now):
    conv.exch = X_COMPLETION
    msg.check_members((b"Type", b"PeerId", b"NoobId", b"MACs"))
    noob_id = msg.b64(b"NoobId", 16)
    macs = msg.b64(b"MACs", 32)
    candidates = [conv.noob] if conv.noob else [n for n, _ in _live_noobs(peer, now)]
    noob = None
    for n in candidates:
        if noob_id in keys.noob_ids(b64e(n)):
            noob = n
    if noob is None:
        raise NoobError(E_UNRECOGNIZED_NOOBID, "unrecognized NoobId")
    r = peer.rec
    out = keys.kdf(r[F_Z], b64d(r[F_NP][1:-1], 32), b64d(r[F_NS][1:-1], 32), noob)
    parts = _oob_parts(peer, noob)
    if not ct_equal(macs, keys.mac(out[224:256], b"2", parts)):
        raise NoobError(E_HMAC, "MACs verification failed")
    macp = keys.mac(out[256:288], b"1", parts)
    # Registered (4): the peer commits when it sends the final response (RFC 9140 section 6.9)
    answer = b'{"Type":6,"PeerId":' + r[F_PEERID] + b',"MACp":' + json_b64(macp) + b"}"
    ks = (out[0:64], out[64:128], out[128:192], out[192:224])
    peer.save({F_STATE: dec(REGISTERED), F_PEERID: r[F_PEERID], F_NAI: r[F_NAI], F_VERP: r[F_VERP],
                F_CS: r[F_CS], F_KZ: out[288:320]})
    peer.keys = ks
    return answer


# ---- OOB message text --------------------------------------------------------------------------------------

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def _pct(text):
    out = []
    for c in text:
        if c in _UNRESERVED:
            out.append(c)
        else:
            for b in c.encode():
                out.append("%%%02X" % b)
    return "".join(out)


def _unpct(text):
    if "%" not in text:
        return text
    raw = bytearray()
    i = 0
    src = text.encode()
    while i < len(src):
        c = src[i]
        if c == 0x25:
            raw.append(int(src[i + 1:i + 3], 16))
            i += 3
        else:
            raw.append(c)
            i += 1
    return raw.decode()


def _parse_oob(text):
    """The P, N, H fields of an OOB message (URL or bare query), or None if it is not one."""
    if type(text) is not str or len(text) > 512:
        return None
    text = text.strip()
    q = text.find("?")
    if q >= 0:
        text = text[q + 1:]
    fields = {}
    try:
        for item in text.split("&"):
            eq = item.find("=")
            if eq <= 0:
                continue
            key = item[:eq]
            if key in fields:
                return None
            fields[key] = _unpct(item[eq + 1:])
    except (ValueError, UnicodeError, IndexError):
        return None
    return fields
