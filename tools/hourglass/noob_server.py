"""EAP-NOOB server core (RFC 9140), sans-IO: EAP responses in, EAP requests out.

`NoobServer` holds the associations (a registry; in memory here, SQLite in the `hourglass noob serve` edge) and
the OOB step; `NoobServer.conversation()` runs one EAP conversation (one exchange):

    conv = server.conversation()
    packets = [conv.start()]                # EAP-Request/Identity
    ... packets = conv.receive(response)    # the next request(s); the last is EAP-Success/Failure when done

An error notification is followed by EAP-Failure in the same list (RFC 9140 section 3.6: the peer does not
answer it). Readings of the RFC where its authors' implementation differs are the ones in lib/eapnoob, written
independently here on `cryptography` so the two sides check each other: the KDF's SuppPrivInfo without a length
prefix (as the authors' transcripts), NoobId looked up in both spellings (the RFC's sent), the NAI in the Reconnect
MAC input (the RFC's; `reconnect_mac_nai=False` for the transcripts' ""), PKs2 left out in KeyingMode 1.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
from dataclasses import dataclass, field
from json.decoder import scanstring  # type: ignore[attr-defined]  # public since Python 2.6, not in typeshed
from typing import Any, Callable, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

REQUEST, RESPONSE, SUCCESS, FAILURE = 1, 2, 3, 4
TYPE_IDENTITY, TYPE_NOOB = 1, 56
MAX_PACKET = 1280
MAX_INFO = 500
NOOB_TIMEOUT = 3600
OOB_RETRIES = 5
SUITES = (1, 2)

E_INVALID_NAI, E_MESSAGE_STRUCTURE, E_INVALID_DATA, E_UNEXPECTED_TYPE = 1001, 1002, 1003, 1004
E_INVALID_ECDHE_KEY = 1005
E_STATE_MISMATCH, E_UNRECOGNIZED_NOOBID, E_UNEXPECTED_PEERID = 2002, 2003, 2004
E_HMAC, E_PEER_INFO = 4001, 5004

UNREGISTERED, WAITING, OOB_RECEIVED, RECONNECTING, REGISTERED = 0, 1, 2, 3, 4

# Responses: required and optional members by type (RFC 9140 sections 3.2, 3.4.2, 3.6)
RESPONSE_MEMBERS = {
    0: ({"Type", "ErrorCode"}, {"PeerId", "ErrorInfo"}),
    1: ({"Type", "PeerState"}, {"PeerId"}),
    2: ({"Type", "Verp", "PeerId", "Cryptosuitep", "Dirp", "PeerInfo"}, set()),
    3: ({"Type", "PeerId", "PKp", "Np"}, set()),
    4: ({"Type", "PeerId"}, set()),
    5: ({"Type", "PeerId", "NoobId"}, set()),
    6: ({"Type", "PeerId", "MACp"}, set()),
    7: ({"Type", "Verp", "PeerId", "Cryptosuitep"}, {"PeerInfo"}),
    8: ({"Type", "PeerId", "Np2"}, {"PKp2"}),
    9: ({"Type", "PeerId", "MACp2"}, set()),
}


class NoobError(Exception):
    def __init__(self, code: int, info: str = ""):
        super().__init__(code, info)
        self.code = code
        self.info = info


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64d(text: object, size: int) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) != (size * 4 + 2) // 3:
        raise NoobError(E_INVALID_DATA, "bad base64url value")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64e(raw) != text:
        raise NoobError(E_INVALID_DATA, "non-canonical base64url")
    return raw


def jstr(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


_WS = re.compile(r"[ \t\r\n]*")


def _skip_ws(text: str, i: int) -> int:
    m = _WS.match(text, i)
    return m.end() if m else i


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_STRICT = json.JSONDecoder(parse_constant=_no_constants)


class RawMessage:
    """A JSON object with each top-level member's value kept as received (raw) and decoded (values)."""

    def __init__(self, data: bytes):
        try:
            text = bytes(data).decode("utf-8")
            raw, values = {}, {}
            i = _skip_ws(text, 0)
            if text[i:i + 1] != "{":
                raise ValueError("not a JSON object")
            i = _skip_ws(text, i + 1)
            if text[i:i + 1] == "}":
                i += 1
            else:
                while True:
                    if text[i:i + 1] != '"':
                        raise ValueError("member name expected")
                    name, i = scanstring(text, i + 1)
                    i = _skip_ws(text, i)
                    if text[i:i + 1] != ":":
                        raise ValueError("':' expected")
                    i = _skip_ws(text, i + 1)
                    value, end = _STRICT.raw_decode(text, i)
                    if name in raw:
                        raise ValueError("duplicate member")
                    raw[name], values[name] = text[i:end], value
                    i = _skip_ws(text, end)
                    if text[i:i + 1] == "}":
                        i += 1
                        break
                    if text[i:i + 1] != ",":
                        raise ValueError("',' expected")
                    i = _skip_ws(text, i + 1)
            if _skip_ws(text, i) != len(text):
                raise ValueError("data after the object")
        except (ValueError, RecursionError) as e:
            raise NoobError(E_MESSAGE_STRUCTURE, str(e)[:100]) from None
        self.raw, self.values = raw, values

    def number(self, name: str, lo: int, hi: int) -> int:
        v = self.values.get(name)
        if type(v) is not int or not lo <= v <= hi:
            raise NoobError(E_INVALID_DATA, f"{name} out of range")
        return v

    def text(self, name: str, max_bytes: int) -> str:
        v = self.values.get(name)
        if not isinstance(v, str) or not v or len(v.encode()) > max_bytes:
            raise NoobError(E_INVALID_DATA, f"bad {name}")
        return v

    def obj(self, name: str, code: int = E_INVALID_DATA) -> str:
        if not isinstance(self.values.get(name), dict) or len(self.raw[name].encode()) > MAX_INFO:
            raise NoobError(code, f"bad {name}")
        return self.raw[name]


# ---- cryptosuites, KDF, Hoob, MACs ----------------------------------------------------------------------

def keypair(cs: int, rng: Callable[[int], bytes]) -> tuple[Any, str]:
    """(private key object, JWK text)."""
    if cs == 1:
        xpriv = x25519.X25519PrivateKey.from_private_bytes(rng(32))
        x = xpriv.public_key().public_bytes_raw()
        return xpriv, '{"kty":"OKP","crv":"X25519","x":"' + b64e(x) + '"}'
    while True:
        d = int.from_bytes(rng(32), "big")
        try:
            priv = ec.derive_private_key(d, ec.SECP256R1())
        except ValueError:
            continue
        pub = priv.public_key().public_numbers()
        return priv, ('{"kty":"EC","crv":"P-256","x":"' + b64e(pub.x.to_bytes(32, "big")) + '","y":"' +
                      b64e(pub.y.to_bytes(32, "big")) + '"}')


def ecdh(cs: int, priv: Any, jwk: Any) -> bytes:
    """Z from our private key and the peer's JWK (decoded); NoobError 1005 for a bad key."""
    try:
        if cs == 1:
            if not isinstance(jwk, dict) or jwk.keys() != {"kty", "crv", "x"} or \
                    (jwk["kty"], jwk["crv"]) != ("OKP", "X25519"):
                raise ValueError("not an X25519 JWK")
            return priv.exchange(x25519.X25519PublicKey.from_public_bytes(b64d(jwk["x"], 32)))
        if not isinstance(jwk, dict) or jwk.keys() != {"kty", "crv", "x", "y"} or \
                (jwk["kty"], jwk["crv"]) != ("EC", "P-256"):
            raise ValueError("not a P-256 JWK")
        x = int.from_bytes(b64d(jwk["x"], 32), "big")
        y = int.from_bytes(b64d(jwk["y"], 32), "big")
        return priv.exchange(ec.ECDH(), ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key())
    except (ValueError, NoobError, TypeError) as e:
        raise NoobError(E_INVALID_ECDHE_KEY, f"invalid ECDHE key: {e}") from None


def kdf(z: bytes, party_u: bytes, party_v: bytes, supp_priv: bytes) -> bytes:
    """RFC 9140 section 3.5, SuppPrivInfo without the RFC's length prefix (as the authors' transcripts)."""
    return ConcatKDFHash(hashes.SHA256(), 320, b"EAP-NOOB" + party_u + party_v + supp_priv).derive(z)


def hash_input(first: str, parts: list[str]) -> bytes:
    return ("[" + ",".join([first, *parts]) + "]").encode()


def hoob(direction: int, parts: list[str]) -> bytes:
    return hashlib.sha256(hash_input(str(direction), parts)).digest()[:16]


def mac(key: bytes, first: str, parts: list[str]) -> bytes:
    return hmac.new(key, hash_input(first, parts), hashlib.sha256).digest()


def noob_ids(noob: bytes) -> tuple[bytes, bytes]:
    """(RFC 9140's H(["NoobId",Noob]), the authors' SHA-256("NoobId" || Noob)), Noob as base64url text."""
    text = b64e(noob)
    return (hashlib.sha256(f'["NoobId","{text}"]'.encode()).digest()[:16],
            hashlib.sha256(f"NoobId{text}".encode()).digest()[:16])


def valid_nai(nai: str) -> bool:
    """RFC 7542 shape, loosely: printable, at most one '@', a non-empty realm after it, <= 253 bytes."""
    if not nai or len(nai.encode()) > 253 or any(c in nai for c in " \t\r\n\x00") or nai.count("@") > 1:
        return False
    return "@" not in nai or bool(nai.split("@", 1)[1])


def parse_oob(text: str) -> dict[str, str] | None:
    from urllib.parse import parse_qsl, urlsplit
    if not isinstance(text, str) or len(text) > 512:
        return None
    text = text.strip()
    query = urlsplit(text).query if "?" in text else text
    try:
        pairs = parse_qsl(query, strict_parsing=True)
    except ValueError:
        return None
    fields = dict(pairs)
    return fields if len(fields) == len(pairs) else None


# ---- associations --------------------------------------------------------------------------------------

@dataclass
class Association:
    """One peer as the server knows it: the ephemeral Initial Exchange (states 1-2) or the persistent
    association (3-4). Raw JSON text is kept exactly as sent or received: Hoob and the MACs cover it."""
    peer_id: str
    state: int
    nai: str  # JSON string
    verp: str = "1"
    cryptosuitep: int = 1
    initial: dict[str, str] = field(default_factory=dict)  # Vers ... Np, raw
    z: bytes = b""
    noobs: list[tuple[bytes, float]] = field(default_factory=list)  # server -> peer Noobs and when made
    received_noob: bytes | None = None  # peer -> server Noob accepted in the OOB step
    oob_failures: int = 0
    kz: bytes | None = None

    def oob_parts(self, noob: bytes) -> list[str]:
        i = self.initial
        return [i["Vers"], i["Verp"], jstr(self.peer_id), i["Cryptosuites"], i["Dirs"], i["ServerInfo"],
                i["Cryptosuitep"], i["Dirp"], self.nai, i["PeerInfo"], "0", i["PKs"], i["Ns"], i["PKp"], i["Np"],
                jstr(b64e(noob))]


class Registry(Protocol):
    """Where the server keeps its associations: MemoryRegistry here, hourglass.noob_db.Database in SQLite."""

    def get(self, peer_id: str) -> Association | None: ...

    def put(self, assoc: Association) -> None: ...

    def delete(self, peer_id: str) -> None: ...


class MemoryRegistry:
    """Associations by PeerId, in memory (the SQLite registry keeps the same records)."""

    def __init__(self) -> None:
        self.peers: dict[str, Association] = {}

    def get(self, peer_id: str) -> Association | None:
        return self.peers.get(peer_id)

    def put(self, assoc: Association) -> None:
        self.peers[assoc.peer_id] = assoc

    def delete(self, peer_id: str) -> None:
        self.peers.pop(peer_id, None)


class NoobServer:
    def __init__(self, server_info: str, *, registry: Registry | None = None, cryptosuites=SUITES,
                 dirs: int = 3, new_nai: str | None = None, sleep_time: int | None = 60, keying_mode: int = 2,
                 noob_timeout: float = NOOB_TIMEOUT, oob_retries: int = OOB_RETRIES,
                 clock: Callable[[], float] = time.time, rng: Callable[[int], bytes] = os.urandom,
                 new_peer_id: Callable[[], str] | None = None, reconnect_mac_nai: bool = True):
        """keying_mode: 1 or 2 for a Reconnect that keeps the cryptosuite (a changed one always gets 3)."""
        RawMessage(('{"ServerInfo":' + server_info + "}").encode()).obj("ServerInfo")  # or NoobError
        self.server_info = server_info
        self.registry: Registry = registry if registry is not None else MemoryRegistry()
        self.cryptosuites = tuple(cryptosuites)
        self.dirs = dirs
        self.new_nai = new_nai
        self.sleep_time = sleep_time
        self.keying_mode = keying_mode
        self.noob_timeout = noob_timeout
        self.oob_retries = oob_retries
        self.clock = clock
        self.rng = rng
        self.new_peer_id = new_peer_id or (lambda: b64e(self.rng(16)))
        self.reconnect_mac_nai = reconnect_mac_nai

    def conversation(self) -> Conversation:
        return Conversation(self)

    def live_noobs(self, assoc: Association) -> list[tuple[bytes, float]]:
        now = self.clock()
        return [(n, t) for n, t in assoc.noobs if now - t < self.noob_timeout]

    def make_oob(self, peer_id: str) -> str:
        """The server -> peer OOB message for the user to enter on the device (P=..&N=..&H=..)."""
        assoc = self.registry.get(peer_id)
        if assoc is None or assoc.state != WAITING or not int(assoc.initial["Dirp"]) & 2:
            raise NoobError(E_STATE_MISMATCH, "no peer waiting for a server-to-peer OOB message")
        noob = self.rng(16)
        assoc.noobs = self.live_noobs(assoc)[-3:] + [(noob, self.clock())]
        self.registry.put(assoc)
        return f"P={peer_id}&N={b64e(noob)}&H={b64e(hoob(2, assoc.oob_parts(noob)))}"

    def accept_oob(self, text: str) -> bool:
        """A peer -> server OOB message (the URL the device shows, or its query). A wrong Hoob is counted;
        OobRetries of them drop the ephemeral association (back to Unregistered)."""
        fields = parse_oob(text)
        assoc = self.registry.get(fields.get("P", "")) if fields else None
        if fields is None or assoc is None or assoc.state != WAITING or not int(assoc.initial["Dirp"]) & 1:
            return False
        try:
            noob = b64d(fields.get("N"), 16)
            ok = hmac.compare_digest(b64d(fields.get("H"), 16), hoob(1, assoc.oob_parts(noob)))
        except NoobError:
            ok = False
        if ok:
            assoc.state, assoc.received_noob, assoc.oob_failures = OOB_RECEIVED, noob, 0
            self.registry.put(assoc)
            return True
        assoc.oob_failures += 1
        if assoc.oob_failures >= self.oob_retries:
            self.registry.delete(assoc.peer_id)
        else:
            self.registry.put(assoc)
        return False


class Conversation:
    """One EAP conversation: the common handshake, then the exchange the states choose (RFC 9140 Table 14)."""

    def __init__(self, server: NoobServer):
        self.server = server
        self.ident = server.rng(1)[0]
        self.expect: int | None = None  # the EAP-NOOB type we wait for; None: the Identity response
        self.exchange = ""
        self.assoc: Association | None = None
        self.done = False
        self.success = False
        self.keys: tuple[bytes, bytes, bytes, bytes] | None = None  # MSK, EMSK, AMSK, MethodId
        self.error: tuple[int, str, bool] | None = None  # code, info, sent by us
        self.nai = ""
        self.s: dict = {}  # this exchange's values

    @property
    def peer(self) -> Association:
        """The association this exchange is about (set by the handshake for every exchange but Initial)."""
        assert self.assoc is not None
        return self.assoc

    # ---- EAP framing -----------------------------------------------------------------------------------

    def _request(self, typ: int, body: bytes) -> bytes:
        self.ident = (self.ident + 1) & 0xFF
        n = 5 + len(body)
        return bytes((REQUEST, self.ident, n >> 8, n & 0xFF, typ)) + body

    def _end(self, success: bool) -> bytes:
        self.done, self.success = True, success
        return bytes((SUCCESS if success else FAILURE, self.ident, 0, 4))

    def _noob(self, text: str) -> bytes:
        return self._request(TYPE_NOOB, text.encode())

    def start(self) -> bytes:
        self.expect = None
        return self._request(TYPE_IDENTITY, b"")

    def receive(self, pkt: bytes) -> list[bytes]:
        """An EAP response -> the packets to send. Malformed packets and stale Identifiers are discarded."""
        if self.done or len(pkt) < 5 or len(pkt) > MAX_PACKET or pkt[0] != RESPONSE or pkt[1] != self.ident:
            return []
        length = (pkt[2] << 8) | pkt[3]
        if length < 5 or length > len(pkt):
            return []
        typ, data = pkt[4], bytes(pkt[5:length])
        if self.expect is None:
            if typ != TYPE_IDENTITY:
                return [self._end(False)]
            try:
                self.nai = data.decode("utf-8")
            except UnicodeDecodeError:
                self.nai = ""
            if not valid_nai(self.nai):
                return self._error(NoobError(E_INVALID_NAI, "invalid NAI"))
            self.expect = 1
            return [self._noob('{"Type":1}')]
        if typ != TYPE_NOOB:  # a Nak or another method: this peer does not do EAP-NOOB
            return [self._end(False)]
        try:
            msg = RawMessage(data)
            t = msg.number("Type", 0, 9)
            required, optional = RESPONSE_MEMBERS[t]
            names = msg.raw.keys()
            if not required <= names or names - required - optional:
                raise NoobError(E_MESSAGE_STRUCTURE, "missing or unrecognized members")
            if t == 0:
                return self._peer_error(msg)
            if t != self.expect:
                raise NoobError(E_UNEXPECTED_TYPE, "unexpected message type")
            if t == 1:
                return self._handshake(msg)
            if msg.raw["PeerId"] != self.s["PeerId"]:
                raise NoobError(E_UNEXPECTED_PEERID, "unexpected PeerId")
            return getattr(self, f"_type{t}")(msg)
        except NoobError as e:
            return self._error(e)

    # ---- errors ----------------------------------------------------------------------------------------

    def _after_error(self, code: int) -> None:
        """RFC 9140 section 3.6: Initial -> 0; Waiting, Completion unchanged (but the recipient of 2003 -> 1);
        Reconnect -> 3."""
        a = self.assoc
        if a is None:
            return
        if self.exchange == "initial":
            self.server.registry.delete(a.peer_id)
        elif self.exchange == "reconnect":
            a.state = RECONNECTING
            self.server.registry.put(a)

    def _error(self, e: NoobError) -> list[bytes]:
        self.error = (e.code, e.info, True)
        self._after_error(e.code)
        pid = self.s.get("PeerId")
        body = '{"Type":0,' + (f'"PeerId":{pid},' if pid else "") + f'"ErrorCode":{e.code},' \
            f'"ErrorInfo":{jstr(e.info[:MAX_INFO])}' + "}"
        return [self._noob(body), self._end(False)]

    def _peer_error(self, msg: RawMessage) -> list[bytes]:
        code = msg.number("ErrorCode", 0, 9999)
        self.error = (code, str(msg.values.get("ErrorInfo", ""))[:MAX_INFO], False)
        self._after_error(code)
        a = self.assoc
        if code == E_UNRECOGNIZED_NOOBID and self.exchange == "completion" and a and a.state == OOB_RECEIVED:
            a.state, a.received_noob = WAITING, None  # (B): our OOB input is rejected by the OOB sender
            self.server.registry.put(a)
        return [self._end(False)]

    # ---- common handshake ------------------------------------------------------------------------------

    def _handshake(self, msg: RawMessage) -> list[bytes]:
        p = msg.number("PeerState", 0, 3)
        a = None
        if p > 0:
            if "PeerId" not in msg.raw:
                raise NoobError(E_MESSAGE_STRUCTURE, "missing PeerId")
            a = self.server.registry.get(msg.text("PeerId", 253))
        s = a.state if a else UNREGISTERED
        if p <= 2 and (s == UNREGISTERED or p == 0) and s <= 2:
            return self._initial()
        self.assoc = a
        if a:
            self.s["PeerId"] = jstr(a.peer_id)  # as we sent it: the MAC inputs copy what was sent
        if p == 1 and s == 1:
            return self._waiting()
        if (p == 2 and s in (1, 2)) or (p == 1 and s == 2):
            return self._completion(p)
        if p == 3 and s in (3, 4):
            return self._reconnect()
        raise NoobError(E_STATE_MISMATCH, "state mismatch, user action required")

    # ---- Initial Exchange ------------------------------------------------------------------------------

    def _initial(self) -> list[bytes]:
        srv = self.server
        self.exchange = "initial"
        pid = jstr(srv.new_peer_id())
        nai = srv.new_nai
        s = self.s
        s.update(PeerId=pid, Vers="[1]", Cryptosuites=json.dumps(list(srv.cryptosuites), separators=(",", ":")),
                 Dirs=str(srv.dirs), ServerInfo=srv.server_info, NAI=jstr(nai or self.nai))
        self.expect = 2
        return [self._noob('{"Type":2,"Vers":[1],"PeerId":' + pid + (f',"NewNAI":{jstr(nai)}' if nai else "") +
                           f',"Cryptosuites":{s["Cryptosuites"]},"Dirs":{srv.dirs},"ServerInfo":{srv.server_info}' +
                           "}")]

    def _sleep(self) -> str:
        t = self.server.sleep_time
        return "" if t is None else f',"SleepTime":{t}'

    def _type2(self, msg: RawMessage) -> list[bytes]:
        srv, s = self.server, self.s
        if msg.number("Verp", 0, 0xFFFF) != 1:
            raise NoobError(E_INVALID_DATA, "Verp not offered")
        cs = msg.number("Cryptosuitep", 0, 0xFFFF)
        if cs not in srv.cryptosuites:
            raise NoobError(E_INVALID_DATA, "Cryptosuitep not offered")
        dirp = msg.number("Dirp", 1, 3)
        if dirp & ~srv.dirs:
            raise NoobError(E_INVALID_DATA, "Dirp not offered")
        s.update(Verp=msg.raw["Verp"], Cryptosuitep=msg.raw["Cryptosuitep"], Dirp=msg.raw["Dirp"],
                 PeerInfo=msg.obj("PeerInfo", E_PEER_INFO), cs=cs)
        s["priv"], s["PKs"] = keypair(cs, srv.rng)
        s["Ns"] = jstr(b64e(srv.rng(32)))
        self.expect = 3
        return [self._noob('{"Type":3,"PeerId":' + s["PeerId"] + ',"PKs":' + s["PKs"] + ',"Ns":' + s["Ns"] +
                           self._sleep() + "}")]

    def _type3(self, msg: RawMessage) -> list[bytes]:
        s = self.s
        b64d(msg.values["Np"], 32)
        z = ecdh(s["cs"], s["priv"], msg.values["PKp"])
        initial = {k: s[k] for k in ("Vers", "Verp", "Cryptosuites", "Dirs", "ServerInfo", "Cryptosuitep",
                                     "Dirp", "PeerInfo", "PKs", "Ns")}
        initial.update(PKp=msg.raw["PKp"], Np=msg.raw["Np"])
        self.server.registry.put(Association(json.loads(s["PeerId"]), WAITING, s["NAI"], verp=s["Verp"],
                                             cryptosuitep=s["cs"], initial=initial, z=z))
        return [self._end(False)]  # the Initial Exchange always ends in EAP-Failure

    # ---- Waiting Exchange ------------------------------------------------------------------------------

    def _waiting(self) -> list[bytes]:
        self.exchange = "waiting"
        self.expect = 4
        return [self._noob('{"Type":4,"PeerId":' + self.s["PeerId"] + self._sleep() + "}")]

    def _type4(self, msg: RawMessage) -> list[bytes]:
        # The association as it is now, not as this conversation read it: the OOB message may have been accepted
        # (accept_oob: OOB Received) while the Waiting Exchange ran, and writing the copy back would undo that.
        a = self.server.registry.get(self.peer.peer_id) or self.peer
        a.noobs = self.server.live_noobs(a)
        self.server.registry.put(a)
        return [self._end(False)]

    # ---- Completion Exchange ---------------------------------------------------------------------------

    def _completion(self, peer_state: int) -> list[bytes]:
        self.exchange = "completion"
        if peer_state == 2:  # the peer got our OOB message (and wins the tie if both were delivered)
            self.expect = 5
            return [self._noob('{"Type":5,"PeerId":' + self.s["PeerId"] + "}")]
        noob = self.peer.received_noob
        assert noob is not None  # server state 2: the peer -> server OOB message was accepted
        return self._macs(noob, b64e(noob_ids(noob)[0]))

    def _type5(self, msg: RawMessage) -> list[bytes]:
        noob_id = b64d(msg.values["NoobId"], 16)
        for noob, _ in self.server.live_noobs(self.peer):
            if noob_id in noob_ids(noob):
                return self._macs(noob, msg.values["NoobId"])  # echo the spelling the peer used
        raise NoobError(E_UNRECOGNIZED_NOOBID, "unrecognized NoobId")

    def _macs(self, noob: bytes, noob_id: str) -> list[bytes]:
        a = self.peer
        i = a.initial
        out = kdf(a.z, b64d(json.loads(i["Np"]), 32), b64d(json.loads(i["Ns"]), 32), noob)
        parts = a.oob_parts(noob)
        self.s.update(out=out, parts=parts)
        self.expect = 6
        return [self._noob('{"Type":6,"PeerId":' + self.s["PeerId"] + f',"NoobId":{jstr(noob_id)},"MACs":' +
                           jstr(b64e(mac(out[224:256], "2", parts))) + "}")]

    def _type6(self, msg: RawMessage) -> list[bytes]:
        out, a = self.s["out"], self.peer
        if not hmac.compare_digest(b64d(msg.values["MACp"], 32), mac(out[256:288], "1", self.s["parts"])):
            raise NoobError(E_HMAC, "MACp verification failed")
        self.server.registry.put(Association(a.peer_id, REGISTERED, a.nai, verp=a.verp,
                                             cryptosuitep=a.cryptosuitep, kz=out[288:320]))
        self.keys = (out[0:64], out[64:128], out[128:192], out[192:224])
        return [self._end(True)]

    # ---- Reconnect Exchange ----------------------------------------------------------------------------

    def _reconnect(self) -> list[bytes]:
        srv, s = self.server, self.s
        self.exchange = "reconnect"
        s.update(Vers="[1]", Cryptosuites=json.dumps(list(srv.cryptosuites), separators=(",", ":")))
        self.expect = 7
        return [self._noob('{"Type":7,"Vers":[1],"PeerId":' + s["PeerId"] + f',"Cryptosuites":{s["Cryptosuites"]}' +
                           "}")]

    def _type7(self, msg: RawMessage) -> list[bytes]:
        srv, s, a = self.server, self.s, self.peer
        if msg.number("Verp", 0, 0xFFFF) != 1:
            raise NoobError(E_INVALID_DATA, "Verp not offered")
        cs = msg.number("Cryptosuitep", 0, 0xFFFF)
        if cs not in srv.cryptosuites:
            raise NoobError(E_INVALID_DATA, "Cryptosuitep not offered")
        km = 3 if cs != a.cryptosuitep else srv.keying_mode
        s.update(Verp=msg.raw["Verp"], Cryptosuitep=msg.raw["Cryptosuitep"], cs=cs, km=km,
                 PeerInfo=msg.obj("PeerInfo", E_PEER_INFO) if "PeerInfo" in msg.raw else '""')
        body = '{"Type":8,"PeerId":' + s["PeerId"] + f',"KeyingMode":{km}'
        s["PKs2"] = '""'
        if km > 1:
            s["priv"], s["PKs2"] = keypair(cs, srv.rng)  # fresh for every Reconnect (RFC 9140 section 3.4.2)
            body += ',"PKs2":' + s["PKs2"]
        s["Ns2"] = jstr(b64e(srv.rng(32)))
        self.expect = 8
        return [self._noob(body + ',"Ns2":' + s["Ns2"] + "}")]

    def _type8(self, msg: RawMessage) -> list[bytes]:
        s, a = self.s, self.peer
        assert a.kz is not None  # states 3-4 hold Kz
        np2 = b64d(msg.values["Np2"], 32)
        ns2 = b64d(json.loads(s["Ns2"]), 32)
        pkp2 = msg.raw.get("PKp2")
        if s["km"] == 1:
            # RFC 9140 leaves PKp2 out in KeyingMode 1; the authors' generator writes "PKp2":"", taken as absent
            if pkp2 not in (None, '""'):
                raise NoobError(E_INVALID_DATA, "PKp2 in KeyingMode 1")
            s["PKp2"] = '""'
            out = kdf(a.kz, np2, ns2, b"")
        else:
            if pkp2 is None:
                raise NoobError(E_MESSAGE_STRUCTURE, "missing PKp2")
            s["PKp2"] = pkp2
            out = kdf(ecdh(s["cs"], s["priv"], msg.values["PKp2"]), np2, ns2, a.kz)
        parts = [s["Vers"], s["Verp"], s["PeerId"], s["Cryptosuites"], '""', '""', s["Cryptosuitep"], '""',
                 a.nai if self.server.reconnect_mac_nai else '""', s["PeerInfo"], str(s["km"]), s["PKs2"],
                 s["Ns2"], s["PKp2"], msg.raw["Np2"], '""']
        s.update(out=out, parts=parts)
        self.expect = 9
        return [self._noob('{"Type":9,"PeerId":' + s["PeerId"] + ',"MACs2":' +
                           jstr(b64e(mac(out[224:256], "2", parts))) + "}")]

    def _type9(self, msg: RawMessage) -> list[bytes]:
        s, a = self.s, self.peer
        out = s["out"]
        if not hmac.compare_digest(b64d(msg.values["MACp2"], 32), mac(out[256:288], "1", s["parts"])):
            raise NoobError(E_HMAC, "MACp2 verification failed")
        a.state = REGISTERED
        if s["km"] == 3:
            a.cryptosuitep, a.kz = s["cs"], out[288:320]
        self.server.registry.put(a)
        self.keys = (out[0:64], out[64:128], out[128:192], out[192:224])
        return [self._end(True)]
