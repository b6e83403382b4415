# One EAP conversation of the EAP-NOOB peer (RFC 9140 section 3): EAP packet dispatch, the common handshake
# (Type 1), error notifications both ways (section 3.6), and the hand-off to the exchange modules. Loaded by
# eapnoob.peer with the first EAP request of a conversation and dropped by Peer.unload() once registered, so a
# registered device carries none of it (nor the strict JSON reader, the KDF or the curves) between re-keys.
from eapnoob import OOB_RECEIVED, RECONNECTING, REGISTERED, UNREGISTERED, WAITING, const
from eapnoob.errors import (E_INVALID_DATA, E_NO_CRYPTOSUITE, E_UNEXPECTED_PEERID, E_UNEXPECTED_TYPE,
                            E_UNRECOGNIZED_NOOBID, NoobError)
from eapnoob import wire
from eapnoob.record import F_PEERID, F_RNOOB, F_STATE, dec

# Which exchange the conversation is in (RFC 9140 section 3.6 sets the state after an error by exchange).
X_NONE = const(0)
X_INITIAL = const(1)
X_WAITING = const(2)
X_COMPLETION = const(3)
X_RECONNECT = const(4)


class Conversation:
    """What one EAP conversation has seen so far; never persisted (an interrupted exchange restarts)."""

    def __init__(self, expect):
        self.expect = expect
        self.exch = X_NONE
        self.peer_id = None
        self.noob = None


def check_peer_info(peer_info):
    """NoobError unless PeerInfo is a JSON object of at most 500 bytes (we send it byte for byte)."""
    wire.Message(peer_info)
    if len(peer_info) > wire.MAX_INFO:
        raise NoobError(E_INVALID_DATA, "PeerInfo longer than 500 bytes")


def receive(peer, pkt, now):
    """Peer.receive for a request (see there)."""
    try:
        code, ident, typ, data = wire.parse(pkt)
    except wire.EapError:
        return None
    if code != wire.REQUEST:  # EAP-Success and Failure are taken by Peer.receive
        return None
    pkt = bytes(pkt)
    last = peer.last
    if last and last[0] == pkt:
        return last[1]
    if typ == wire.TYPE_IDENTITY:
        peer.conv = None
        body = peer.identity().encode()
    elif typ == wire.TYPE_NOTIFICATION:
        body = b""
    elif typ != wire.TYPE_NOOB:
        typ = wire.TYPE_NAK
        body = bytes((wire.TYPE_NOOB,))
    else:
        body = _noob(peer, data, now)
        if body is None:
            return None
    resp = wire.build(wire.RESPONSE, ident, typ, body)
    peer.last = (pkt, resp)
    return resp


def _noob(peer, data, now):
    conv = peer.conv
    try:
        msg = wire.Message(data)
        typ = msg.int(b"Type", 0, 9)
        if typ == 0:
            return _on_error(peer, msg)
        if typ == 1:
            msg.check_members((b"Type",))
            return _on_type1(peer)
        if conv is None or typ not in conv.expect:
            raise NoobError(E_UNEXPECTED_TYPE, "unexpected message type")
        expect = conv.expect
        conv.expect = ()
        if typ >= 7:
            from eapnoob import reconnect as exchange
        else:
            from eapnoob import bootstrap as exchange
        # a missing PeerId is caught by the handler's member check (1002)
        if typ != 2 and typ != 7 and msg.has(b"PeerId") and \
                msg.raw(b"PeerId") != (conv.peer_id if typ in (3, 8, 9) else peer.rec[F_PEERID]):
            raise NoobError(E_UNEXPECTED_PEERID, "unexpected PeerId")
        try:
            return getattr(exchange, "on_type%d" % typ)(peer, conv, msg, now)
        except MemoryError:  # nothing was answered: the retransmission of this request is taken afresh
            conv.expect = expect
            raise
    except NoobError as e:
        return _send_error(peer, e)


def _send_error(peer, e):
    conv = peer.conv
    peer.error = (e.code, e.info, True)
    exch = conv.exch if conv else X_NONE
    peer.conv = None
    if exch == X_INITIAL:
        peer.unregister()
    pid = conv.peer_id if conv and conv.peer_id else peer.rec.get(F_PEERID)
    out = b'{"Type":0,'
    if pid:
        out += b'"PeerId":' + pid + b","
    return (out + b'"ErrorCode":' + dec(e.code) + b',"ErrorInfo":' + wire.json_str(e.info[:wire.MAX_INFO]) +
            b"}")


def _on_error(peer, msg):
    """An error notification from the server (RFC 9140 section 3.6): no response; the state follows the
    exchange it ended."""
    msg.check_members((b"Type", b"ErrorCode"), (b"PeerId", b"ErrorInfo"))
    code = msg.int(b"ErrorCode", 0, 9999)
    info = msg.text(b"ErrorInfo", wire.MAX_INFO) if msg.has(b"ErrorInfo") else ""
    peer.error = (code, info, False)
    conv = peer.conv
    exch = conv.exch if conv else X_NONE
    peer.conv = None
    if exch == X_INITIAL:
        peer.unregister()
    elif code == E_UNRECOGNIZED_NOOBID and peer.state == OOB_RECEIVED:
        # OOB Reject: the server does not know the Noob we were given (expired or spoofed)
        rec = dict(peer.rec)
        rec[F_STATE] = dec(WAITING)
        rec.pop(F_RNOOB, None)
        peer.save(rec)
    return None


def _on_type1(peer):
    peer.keys = None
    state = peer.state
    if state == REGISTERED:  # a new EAP conversation means the old keys are not accepted: Reconnecting
        peer.rekey()
        state = RECONNECTING
    peer.conv = Conversation((2,) if state == UNREGISTERED else (2, 4, 6) if state == WAITING
                             else (2, 5) if state == OOB_RECEIVED else (7,))
    if state == UNREGISTERED:  # RFC 9140 section 3.2.1: SHOULD omit PeerId
        return b'{"Type":1,"PeerState":0}'
    return b'{"Type":1,"PeerId":' + peer.rec[F_PEERID] + b',"PeerState":' + dec(state) + b"}"


def choose_suite(peer, offered):
    for cs in peer.suites:
        if cs in offered:
            return cs
    raise NoobError(E_NO_CRYPTOSUITE, "no common cryptosuite")
