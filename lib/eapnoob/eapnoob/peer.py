# The EAP-NOOB peer (RFC 9140) as a sans-IO state machine: EAP packets in, EAP packets out, the association in
# a store (lib/store FileStore) written atomically on every state change, so a reboot in any PeerState resumes.
#
#   peer = Peer(FileStore("/noob"), peer_info=b'{"Make":"Acme","Type":"sensor"}')
#   response = peer.receive(eap_request, now)       # bytes to send back, or None
#   peer.oob_message(now)                           # peer -> server OOB as URL text (state 1, Dirp 1 or 3)
#   peer.accept_oob(text)                           # server -> peer OOB typed in by the user (Dirp 2 or 3)
#
# `now` is the edge's clock in seconds: it dates the Noobs the peer sends (NoobTimeout). After EAP-Success
# (state 4) peer.keys holds (MSK, EMSK, AMSK, MethodId).
import json

from crypto.util import ct_equal, random_bytes

from eapnoob import (E_HMAC, E_INVALID_DATA, E_MESSAGE_STRUCTURE, E_NO_CRYPTOSUITE, E_NO_DIRECTION, E_NO_VERSION,
                     E_SERVER_INFO, E_UNEXPECTED_PEERID, E_UNEXPECTED_TYPE, E_UNRECOGNIZED_NOOBID, NoobError,
                     OOB_RECEIVED, RECONNECTING, REGISTERED, UNREGISTERED, WAITING, const)
from eapnoob import keys, wire
from eapnoob.wire import b64d, b64e, json_str

# RFC 9965 replaces RFC 9140's "noob@eap-noob.arpa" with this NAI for a peer that has none assigned.
DEFAULT_NAI = "@noob.eap.arpa"
NOOB_TIMEOUT = 3600  # RFC 9140 Appendix B, RECOMMENDED
OOB_RETRIES = 5  # RFC 9140 Appendix B, RECOMMENDED
MAX_INFO = 500  # ServerInfo / PeerInfo / ErrorInfo bytes (RFC 9140 section 3.3.2)
STORE_NAME = "eapnoob"

# Fields of the stored record (one tag byte, two length bytes, the value). Integers are stored as decimal text.
_F_STATE = const(0)
_F_PEERID = const(1)  # raw JSON string exactly as the server sent it
_F_NAI = const(2)  # raw JSON string: NewNAI as received, or ours
_F_VERP = const(3)
_F_CS = const(4)
_F_CS_PREV = const(5)
_F_KZ = const(6)
_F_KZ_PREV = const(7)
_F_VERS = const(8)  # the Initial Exchange, kept raw for Hoob and MACs (states 1-2)
_F_CSS = const(9)
_F_DIRS = const(10)
_F_SINFO = const(11)
_F_DIRP = const(12)
_F_PKS = const(13)
_F_NS = const(14)
_F_PKP = const(15)
_F_NP = const(16)
_F_Z = const(17)  # the ECDHE shared secret, so the private key need not be kept
_F_NOOBS = const(18)  # Noobs we sent: 16 bytes each + 8-byte big-endian time
_F_RNOOB = const(19)  # the Noob the user gave us (state 2)
_F_RETRIES = const(20)  # rejected OOB messages so far
_F_SLEEP = const(21)  # the latest SleepTime

# Conversation: which exchange we are in (RFC 9140 section 3.6 sets the state after an error by exchange).
_X_NONE = const(0)
_X_INITIAL = const(1)
_X_WAITING = const(2)
_X_COMPLETION = const(3)
_X_RECONNECT = const(4)

# Request members, required and optional, by type (RFC 9140 sections 3.2 and 3.4.2).
_T = b"Type"
_PID = b"PeerId"
_SINFO = b"ServerInfo"
_NEWNAI = b"NewNAI"
_SLEEP = b"SleepTime"
_PKS2 = b"PKs2"


def _encode(rec):
    out = []
    for k in sorted(rec):
        v = rec[k]
        out.append(bytes((k, len(v) >> 8, len(v) & 0xFF)))
        out.append(v)
    return b"".join(out)


def _decode(blob):
    rec = {}
    i = 0
    n = len(blob)
    while i < n:
        if i + 3 > n:
            return None
        k = blob[i]
        ln = (blob[i + 1] << 8) | blob[i + 2]
        i += 3
        if i + ln > n:
            return None
        rec[k] = blob[i:i + ln]
        i += ln
    return rec


def _int(b):
    return int(b) if b else None


def _b(n):
    return b"%d" % n


def _json_b64(raw):
    return b'"' + b64e(raw) + b'"'


class _Conversation:
    """What one EAP conversation has seen so far; never persisted (an interrupted exchange restarts)."""

    def __init__(self, expect):
        self.expect = expect
        self.exch = _X_NONE
        self.peer_id = None
        self.noob = None


class Peer:
    def __init__(self, store, peer_info, suites=keys.SUITES, dirs=3, nai=DEFAULT_NAI, rng=random_bytes,
                 noob_timeout=NOOB_TIMEOUT, oob_retries=OOB_RETRIES, reconnect_mac_nai=True):
        """suites: the cryptosuites we accept, most preferred first; dirs: the OOB directions the device can do
        (1 = it can show a message, 2 = the user can enter one, 3 = both); nai: our NAI until the server assigns
        one; reconnect_mac_nai=False puts "" where RFC 9140 puts the NAI in the MACs2/MACp2 input, as the
        authors' transcripts (which predate the RFC) do."""
        wire.Message(peer_info)  # a JSON object, or NoobError
        if len(peer_info) > MAX_INFO:
            raise NoobError(E_INVALID_DATA, "PeerInfo longer than 500 bytes")
        self.store = store
        self.peer_info = bytes(peer_info)
        self.suites = suites
        self.dirs = dirs
        self.nai = nai
        self.rng = rng
        self.noob_timeout = noob_timeout
        self.oob_retries = oob_retries
        self.reconnect_mac_nai = reconnect_mac_nai
        self.keys = None
        self.error = None  # (code, info, sent_by_us) of the last error notification
        self._conv = None
        self._last = None  # (request, response): a retransmitted request gets the same response
        blob = store.get(STORE_NAME)
        rec = _decode(blob) if blob else None
        # A lost or unreadable record is a memory failure: Unregistered (RFC 9140 section 3.1).
        self.rec = rec if rec and _F_STATE in rec else {_F_STATE: b"0"}

    # ---- state -------------------------------------------------------------------------------------------

    @property
    def state(self):
        return int(self.rec[_F_STATE])

    @property
    def peer_id(self):
        raw = self.rec.get(_F_PEERID)
        return json.loads(raw) if raw else None

    @property
    def sleep_time(self):
        return _int(self.rec.get(_F_SLEEP))

    @property
    def session_id(self):
        """EAP Session-Id (RFC 9140 section 3.5): 0x38 || MethodId, after a successful exchange."""
        return b"\x38" + self.keys[3] if self.keys else None

    def _save(self, rec):
        self.store.put(STORE_NAME, _encode(rec))
        self.rec = rec

    def _set_state(self, state):
        rec = dict(self.rec)
        rec[_F_STATE] = _b(state)
        self._save(rec)

    def _unregister(self):
        if self.state < RECONNECTING:  # never drop a persistent association on an in-band event
            self.store.delete(STORE_NAME)
            self.rec = {_F_STATE: b"0"}

    def reset(self):
        """User reset (RFC 9140 section 3.4.3): forget the association, back to Unregistered."""
        self.store.delete(STORE_NAME)
        self.rec = {_F_STATE: b"0"}
        self._conv = None
        self.keys = None

    def rekey(self):
        """Registered -> Reconnecting: the session keys are no longer accepted, or the application wants new ones."""
        if self.state == REGISTERED:
            self._set_state(RECONNECTING)

    def identity(self):
        raw = self.rec.get(_F_NAI)
        return json.loads(raw) if raw else self.nai

    # ---- EAP ---------------------------------------------------------------------------------------------

    def receive(self, pkt, now=0):
        """One EAP packet from the authenticator -> the EAP response to send, or None. A malformed packet is
        discarded (RFC 3748 section 4); a malformed EAP-NOOB message gets an error notification."""
        try:
            code, ident, typ, data = wire.parse(pkt)
        except wire.EapError:
            return None
        if code == wire.SUCCESS or code == wire.FAILURE:
            self._conv = None
            self._last = None
            return None
        if code != wire.REQUEST:
            return None
        pkt = bytes(pkt)
        last = self._last
        if last and last[0] == pkt:
            return last[1]
        if typ == wire.TYPE_IDENTITY:
            self._conv = None
            body = self.identity().encode()
        elif typ == wire.TYPE_NOTIFICATION:
            body = b""
        elif typ != wire.TYPE_NOOB:
            typ = wire.TYPE_NAK
            body = bytes((wire.TYPE_NOOB,))
        else:
            body = self._noob(data, now)
            if body is None:
                return None
        resp = wire.build(wire.RESPONSE, ident, typ, body)
        self._last = (pkt, resp)
        return resp

    def _noob(self, data, now):
        conv = self._conv
        try:
            msg = wire.Message(data)
            typ = msg.int(_T, 0, 9)
            if typ == 0:
                return self._on_error(msg)
            if typ == 1:
                msg.check_members((_T,))
                return self._on_type1()
            if conv is None or typ not in conv.expect:
                raise NoobError(E_UNEXPECTED_TYPE, "unexpected message type")
            conv.expect = ()
            if typ == 2:
                return self._on_type2(conv, msg)
            if typ == 7:
                return self._on_type7(conv, msg)
            # a missing PeerId is caught by the handler's member check (1002)
            if msg.has(_PID) and msg.raw(_PID) != (conv.peer_id if typ in (3, 8, 9) else self.rec[_F_PEERID]):
                raise NoobError(E_UNEXPECTED_PEERID, "unexpected PeerId")
            if typ == 3:
                return self._on_type3(conv, msg)
            if typ == 4:
                return self._on_type4(conv, msg, now)
            if typ == 5:
                return self._on_type5(conv, msg)
            if typ == 6:
                return self._on_type6(conv, msg, now)
            if typ == 8:
                return self._on_type8(conv, msg)
            return self._on_type9(conv, msg)
        except NoobError as e:
            return self._send_error(e)

    def _send_error(self, e):
        conv = self._conv
        self.error = (e.code, e.info, True)
        exch = conv.exch if conv else _X_NONE
        self._conv = None
        if exch == _X_INITIAL:
            self._unregister()
        pid = conv.peer_id if conv and conv.peer_id else self.rec.get(_F_PEERID)
        out = b'{"Type":0,'
        if pid:
            out += b'"PeerId":' + pid + b","
        return out + b'"ErrorCode":' + _b(e.code) + b',"ErrorInfo":' + json_str(e.info[:MAX_INFO]) + b"}"

    def _on_error(self, msg):
        """An error notification from the server (RFC 9140 section 3.6): no response; the state follows the
        exchange it ended."""
        msg.check_members((_T, b"ErrorCode"), (_PID, b"ErrorInfo"))
        code = msg.int(b"ErrorCode", 0, 9999)
        info = msg.text(b"ErrorInfo", MAX_INFO) if msg.has(b"ErrorInfo") else ""
        self.error = (code, info, False)
        conv = self._conv
        exch = conv.exch if conv else _X_NONE
        self._conv = None
        if exch == _X_INITIAL:
            self._unregister()
        elif code == E_UNRECOGNIZED_NOOBID and self.state == OOB_RECEIVED:
            # OOB Reject: the server does not know the Noob we were given (expired or spoofed)
            rec = dict(self.rec)
            rec[_F_STATE] = _b(WAITING)
            rec.pop(_F_RNOOB, None)
            self._save(rec)
        return None

    # ---- common handshake --------------------------------------------------------------------------------

    def _on_type1(self):
        self.keys = None
        state = self.state
        if state == REGISTERED:  # a new EAP conversation means the old keys are not accepted: Reconnecting
            self._set_state(RECONNECTING)
            state = RECONNECTING
        self._conv = _Conversation((2,) if state == UNREGISTERED else (2, 4, 6) if state == WAITING
                                   else (2, 5) if state == OOB_RECEIVED else (7,))
        if state == UNREGISTERED:  # RFC 9140 section 3.2.1: SHOULD omit PeerId
            return b'{"Type":1,"PeerState":0}'
        return b'{"Type":1,"PeerId":' + self.rec[_F_PEERID] + b',"PeerState":' + _b(state) + b"}"

    # ---- Initial Exchange --------------------------------------------------------------------------------

    def _choose_suite(self, offered):
        for cs in self.suites:
            if cs in offered:
                return cs
        raise NoobError(E_NO_CRYPTOSUITE, "no common cryptosuite")

    def _peer_id_raw(self, msg):
        self._check_text(msg, _PID, 128)
        return msg.raw(_PID)

    def _check_text(self, msg, name, max_bytes):
        s = msg.text(name, max_bytes)
        if not s or "\x00" in s or " " in s:
            raise NoobError(E_INVALID_DATA, "bad " + name.decode())
        return s

    def _on_type2(self, conv, msg):
        conv.exch = _X_INITIAL
        msg.check_members((_T, b"Vers", _PID, b"Cryptosuites", b"Dirs", _SINFO), (_NEWNAI,))
        conv.peer_id = self._peer_id_raw(msg)
        if 1 not in msg.int_list(b"Vers"):
            raise NoobError(E_NO_VERSION, "no common version")
        conv.cs = self._choose_suite(msg.int_list(b"Cryptosuites"))
        dirp = msg.int(b"Dirs", 1, 3) & self.dirs
        if not dirp:
            raise NoobError(E_NO_DIRECTION, "no common OOB direction")
        try:
            sinfo = msg.object(_SINFO, MAX_INFO)
        except NoobError:
            raise NoobError(E_SERVER_INFO, "bad ServerInfo")
        if msg.has(_NEWNAI):
            nai = self._check_text(msg, _NEWNAI, 253)
            if nai.count("@") > 1:
                raise NoobError(E_INVALID_DATA, "bad NewNAI")
            conv.nai = msg.raw(_NEWNAI)
        else:
            conv.nai = json_str(self.identity())
        conv.init = {_F_VERS: msg.raw(b"Vers"), _F_CSS: msg.raw(b"Cryptosuites"), _F_DIRS: msg.raw(b"Dirs"),
                     _F_SINFO: sinfo, _F_DIRP: _b(dirp)}
        conv.expect = (3,)
        return (b'{"Type":2,"Verp":1,"PeerId":' + conv.peer_id + b',"Cryptosuitep":' + _b(conv.cs) +
                b',"Dirp":' + _b(dirp) + b',"PeerInfo":' + self.peer_info + b"}")

    def _sleep(self, msg, rec):
        if msg.has(_SLEEP):
            rec[_F_SLEEP] = _b(msg.int(_SLEEP, 0, 3600))

    def _on_type3(self, conv, msg):
        msg.check_members((_T, _PID, b"PKs", b"Ns"), (_SLEEP,))
        cs = conv.cs
        pks = msg.object(b"PKs", 300)
        pub = keys.parse_jwk(cs, pks)
        msg.b64(b"Ns", 32)
        priv, own = keys.keypair(cs, self.rng)
        np = self.rng(32)
        pkp = keys.jwk(cs, own)
        rec = conv.init
        rec[_F_STATE] = _b(WAITING)
        rec[_F_PEERID] = conv.peer_id
        rec[_F_NAI] = conv.nai
        rec[_F_VERP] = b"1"
        rec[_F_CS] = _b(cs)
        rec[_F_PKS] = pks
        rec[_F_NS] = msg.raw(b"Ns")
        rec[_F_PKP] = pkp
        rec[_F_NP] = _json_b64(np)
        rec[_F_Z] = keys.ecdh(cs, priv, pub)
        self._sleep(msg, rec)
        conv.init = None
        self._save(rec)  # Waiting for OOB (1): the Initial Exchange is complete on our side
        return b'{"Type":3,"PeerId":' + conv.peer_id + b',"PKp":' + pkp + b',"Np":' + rec[_F_NP] + b"}"

    # ---- Waiting Exchange and the OOB step ---------------------------------------------------------------

    def _live_noobs(self, now):
        """[(noob, time)] of the Noobs we sent that have not expired."""
        blob = self.rec.get(_F_NOOBS, b"")
        out = []
        for i in range(0, len(blob) - 23, 24):
            t = int.from_bytes(blob[i + 16:i + 24], "big")
            if now - t < self.noob_timeout:
                out.append((blob[i:i + 16], t))
        return out

    def _set_noobs(self, rec, noobs):
        rec[_F_NOOBS] = b"".join(n + t.to_bytes(8, "big") for n, t in noobs)

    def _on_type4(self, conv, msg, now):
        conv.exch = _X_WAITING
        msg.check_members((_T, _PID), (_SLEEP,))
        rec = dict(self.rec)
        self._sleep(msg, rec)
        # RFC 9140 section 3.2.5: after the Waiting Exchange, drop the sent Noobs older than NoobTimeout
        self._set_noobs(rec, self._live_noobs(now))
        if rec != self.rec:
            self._save(rec)
        return b'{"Type":4,"PeerId":' + rec[_F_PEERID] + b"}"

    def _oob_parts(self, noob):
        r = self.rec
        return (r[_F_VERS], r[_F_VERP], r[_F_PEERID], r[_F_CSS], r[_F_DIRS], r[_F_SINFO], r[_F_CS], r[_F_DIRP],
                r[_F_NAI], self.peer_info, b"0", r[_F_PKS], r[_F_NS], r[_F_PKP], r[_F_NP], _json_b64(noob))

    def _dirp(self):
        return _int(self.rec.get(_F_DIRP)) or 0

    def oob_message(self, now):
        """The peer -> server OOB message (RFC 9140 Appendix D) for the user to deliver: the server's URL from
        ServerInfo with ?P=<PeerId>&N=<Noob>&H=<Hoob>, or the bare query when ServerInfo names no URL. A new
        Noob is made every NoobTimeout / 2 (the RECOMMENDED NoobInterval); None outside Waiting for OOB."""
        if self.state != WAITING or not self._dirp() & 1:
            return None
        noobs = self._live_noobs(now)
        if not noobs or now - noobs[-1][1] >= self.noob_timeout // 2:
            noobs = noobs[-3:] + [(self.rng(16), now)]
            rec = dict(self.rec)
            self._set_noobs(rec, noobs)
            self._save(rec)
        noob = noobs[-1][0]
        query = ("P=" + _pct(self.peer_id) + "&N=" + b64e(noob).decode() + "&H=" +
                 b64e(keys.hoob(1, self._oob_parts(noob))).decode())
        url = self._server_url()
        return url + ("&" if "?" in url else "?") + query if url else query

    def _server_url(self):
        try:
            info = json.loads(self.rec[_F_SINFO])
        except ValueError:
            return None
        # "ServerURL" is RFC 9140's name; "Url" the draft-era one the authors' transcripts still use
        url = info.get("ServerURL") or info.get("Url")
        return url if type(url) is str and url.startswith("https://") else None

    def accept_oob(self, text):
        """A server -> peer OOB message the user entered (a URL or just P=..&N=..&H=..). True if accepted
        (-> OOB Received); a rejected one leaves the state alone until OobRetries of them (-> Unregistered)."""
        if self.state != WAITING or not self._dirp() & 2:
            return False
        fields = _parse_oob(text)
        ok = False
        if fields and fields.get("P") == self.peer_id:
            try:
                noob = b64d(fields.get("N", ""), 16)
                ok = ct_equal(b64d(fields.get("H", ""), 16), keys.hoob(2, self._oob_parts(noob)))
            except NoobError:
                pass
        rec = dict(self.rec)
        if ok:
            rec[_F_STATE] = _b(OOB_RECEIVED)
            rec[_F_RNOOB] = noob
            rec.pop(_F_RETRIES, None)
            self._save(rec)
            return True
        retries = (_int(rec.get(_F_RETRIES)) or 0) + 1
        if retries >= self.oob_retries:
            self._unregister()
        else:
            rec[_F_RETRIES] = _b(retries)
            self._save(rec)
        return False

    # ---- Completion Exchange -----------------------------------------------------------------------------

    def _on_type5(self, conv, msg):
        conv.exch = _X_COMPLETION
        msg.check_members((_T, _PID))
        conv.noob = self.rec[_F_RNOOB]
        conv.expect = (6,)
        noob_id = keys.noob_ids(b64e(conv.noob))[0]
        return b'{"Type":5,"PeerId":' + self.rec[_F_PEERID] + b',"NoobId":' + _json_b64(noob_id) + b"}"

    def _on_type6(self, conv, msg, now):
        conv.exch = _X_COMPLETION
        msg.check_members((_T, _PID, b"NoobId", b"MACs"))
        noob_id = msg.b64(b"NoobId", 16)
        macs = msg.b64(b"MACs", 32)
        candidates = [conv.noob] if conv.noob else [n for n, _ in self._live_noobs(now)]
        noob = None
        for n in candidates:
            if noob_id in keys.noob_ids(b64e(n)):
                noob = n
        if noob is None:
            raise NoobError(E_UNRECOGNIZED_NOOBID, "unrecognized NoobId")
        r = self.rec
        out = keys.kdf(r[_F_Z], b64d(r[_F_NP][1:-1], 32), b64d(r[_F_NS][1:-1], 32), noob)
        parts = self._oob_parts(noob)
        if not ct_equal(macs, keys.mac(out[224:256], b"2", parts)):
            raise NoobError(E_HMAC, "MACs verification failed")
        macp = keys.mac(out[256:288], b"1", parts)
        # Registered (4): the peer commits when it sends the final response (RFC 9140 section 6.9)
        self._save({_F_STATE: _b(REGISTERED), _F_PEERID: r[_F_PEERID], _F_NAI: r[_F_NAI], _F_VERP: r[_F_VERP],
                    _F_CS: r[_F_CS], _F_KZ: out[288:320]})
        self.keys = (out[0:64], out[64:128], out[128:192], out[192:224])
        return b'{"Type":6,"PeerId":' + r[_F_PEERID] + b',"MACp":' + _json_b64(macp) + b"}"

    # ---- Reconnect Exchange ------------------------------------------------------------------------------

    def _on_type7(self, conv, msg):
        conv.exch = _X_RECONNECT
        msg.check_members((_T, b"Vers", _PID, b"Cryptosuites"), (_NEWNAI, _SINFO))
        conv.peer_id = self.rec[_F_PEERID]
        if msg.raw(_PID) != conv.peer_id:
            raise NoobError(E_UNEXPECTED_PEERID, "unexpected PeerId")
        if 1 not in msg.int_list(b"Vers"):
            raise NoobError(E_NO_VERSION, "no common version")
        # Both suites are 128-bit secure, so neither is "weaker" (RFC 9140 section 3.4.2): any we accept will do
        conv.cs = self._choose_suite(msg.int_list(b"Cryptosuites"))
        conv.sinfo = b'""'
        if msg.has(_SINFO):
            try:
                conv.sinfo = msg.object(_SINFO, MAX_INFO)
            except NoobError:
                raise NoobError(E_SERVER_INFO, "bad ServerInfo")
        conv.nai = None
        if msg.has(_NEWNAI):
            self._check_text(msg, _NEWNAI, 253)
            conv.nai = msg.raw(_NEWNAI)
        conv.vers = msg.raw(b"Vers")
        conv.css = msg.raw(b"Cryptosuites")
        conv.expect = (8,)
        return b'{"Type":7,"Verp":1,"PeerId":' + conv.peer_id + b',"Cryptosuitep":' + _b(conv.cs) + b"}"

    def _on_type8(self, conv, msg):
        msg.check_members((_T, _PID, b"KeyingMode", b"Ns2"), (_PKS2,))
        km = msg.int(b"KeyingMode", 1, 3)
        cs = conv.cs
        r = self.rec
        if km < 3 and cs != _int(r[_F_CS]) and cs != _int(r.get(_F_CS_PREV)):
            raise NoobError(E_INVALID_DATA, "KeyingMode %d with a new cryptosuite" % km)
        pks2 = msg.raw(_PKS2)
        conv.pks2 = conv.pkp2 = b'""'
        if km == 1:
            # RFC 9140 leaves PKs2 out in KeyingMode 1; the authors' generator writes "PKs2":"", accepted as absent
            if pks2 is not None and pks2 != b'""':
                raise NoobError(E_INVALID_DATA, "PKs2 in KeyingMode 1")
        else:
            pub = keys.parse_jwk(cs, msg.object(_PKS2, 300))
            priv, own = keys.keypair(cs, self.rng)  # fresh for every Reconnect (RFC 9140 section 3.4.2)
            conv.pks2 = pks2
            conv.pkp2 = keys.jwk(cs, own)
            conv.z = keys.ecdh(cs, priv, pub)
        conv.ns2 = msg.raw(b"Ns2")
        msg.b64(b"Ns2", 32)
        conv.np2 = _json_b64(self.rng(32))
        conv.km = km
        conv.expect = (9,)
        out = b'{"Type":8,"PeerId":' + conv.peer_id
        if km > 1:
            out += b',"PKp2":' + conv.pkp2
        return out + b',"Np2":' + conv.np2 + b"}"

    def _reconnect_keys(self, conv, kz):
        np2 = b64d(conv.np2[1:-1], 32)
        ns2 = b64d(conv.ns2[1:-1], 32)
        if conv.km == 1:
            return keys.kdf(kz, np2, ns2, b"")
        return keys.kdf(conv.z, np2, ns2, kz)

    def _on_type9(self, conv, msg):
        msg.check_members((_T, _PID, b"MACs2"))
        macs2 = msg.b64(b"MACs2", 32)
        r = dict(self.rec)
        nai = conv.nai or r[_F_NAI]
        parts = (conv.vers, b"1", conv.peer_id, conv.css, b'""', conv.sinfo, _b(conv.cs), b'""',
                 nai if self.reconnect_mac_nai else b'""', b'""', _b(conv.km), conv.pks2, conv.ns2, conv.pkp2,
                 conv.np2, b'""')
        out = self._reconnect_keys(conv, r[_F_KZ])
        if not ct_equal(macs2, keys.mac(out[224:256], b"2", parts)):
            out = None
            if _F_KZ_PREV in r:  # RFC 9140 section 3.4.2 step 2: did the server miss our last upgrade?
                out = self._reconnect_keys(conv, r[_F_KZ_PREV])
                if ct_equal(macs2, keys.mac(out[224:256], b"2", parts)):
                    r[_F_CS] = r[_F_CS_PREV]
                    r[_F_KZ] = r[_F_KZ_PREV]
                else:
                    out = None
            if out is None:
                raise NoobError(E_HMAC, "MACs2 verification failed")
        r.pop(_F_CS_PREV, None)
        r.pop(_F_KZ_PREV, None)
        if conv.km == 3:
            r[_F_CS_PREV] = r[_F_CS]
            r[_F_KZ_PREV] = r[_F_KZ]
            r[_F_CS] = _b(conv.cs)
            r[_F_KZ] = out[288:320]
        r[_F_NAI] = nai
        r[_F_STATE] = _b(REGISTERED)
        macp2 = keys.mac(out[256:288], b"1", parts)
        self._save(r)
        self.keys = (out[0:64], out[64:128], out[128:192], out[192:224])
        return b'{"Type":9,"PeerId":' + conv.peer_id + b',"MACp2":' + _json_b64(macp2) + b"}"


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
