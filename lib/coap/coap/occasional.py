# Operations an application uses now and then, loaded on first use: send_non (a NON request sent without
# waiting for any answer, e.g. CoAP-EAP's trigger), ping (an empty CON), the clean-up of Endpoint.unroute, and
# unknown_critical (the server's own check is inlined in coap.serve.respond).
import os
from coap.msg import Message

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

_NON = const(1)
_RST = const(3)


def send_non(ep, method, remote, path, payload=b"", options=(), token=None):
    """Send one NON request (through the transform) and wait for nothing; returns the message sent (its
    mid and token). An answer, if the peer sends one, reaches no one: the endpoint resets it as one with
    an unknown token (start() the endpoint to hear it at all). The payload must fit one message."""
    m = Message(_NON, method, 0, token or os.urandom(4), payload).set_path(path)
    for o in options:
        m.add(o[0], o[1])
    m.remote = remote
    if ep.transform is not None:
        from coap.transform import request_out
        m = request_out(ep, m)
    m.mid = ep.next_mid()
    data = m.encode()
    if len(data) > ep.t.max_message_size:
        raise ValueError("NON request larger than one message")
    ep.t.send(data, remote)
    return m


async def ping(ep, remote):
    """CoAP ping: an empty CON; True when the peer answers RST. Raises RequestTimeout."""
    r = await ep.send_con(Message(0, 0, ep.next_mid()), remote)  # CON, Empty
    return r.type == _RST


def unroute(ep, res):
    """Endpoint.unroute took res away: drop its unfinished uploads, end its observations with 4.04."""
    ups = ep.uploads
    for k in [k for k in ups if k[1] == res.path]:
        del ups[k]
    if res.observers:
        from coap.observe import gone
        gone(ep, res)


def unknown_critical(msg):
    """The first unrecognised critical option number in msg, or None. Critical options this stack understands:
    If-Match, Uri-Host, If-None-Match, Uri-Port, Uri-Path, Uri-Query, Accept, Block2, Block1."""
    for n, _ in msg.items():
        if n & 1 and (n > 255 or n not in b"\x01\x03\x05\x07\x0b\x0f\x11\x17\x1b"):
            return n
    return None
