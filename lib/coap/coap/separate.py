# Separate responses (RFC 7252 section 5.2.2) for async handlers: when the answer is not ready within
# Server.ack_delay the request gets an empty ACK, and the response follows as a CON. Loaded on the first
# async handler.
import asyncio
from coap.msg import Message

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

_CON = const(0)
_ACK = const(2)
_SERVER_ERROR = const(160)


async def send_quietly(srv, m, remote):
    # A CON response with retransmission; a peer that never ACKs is the peer's problem.
    try:
        await srv.send_con(m, remote)
    except Exception:
        pass


async def answer_later(srv, req, coro):
    acked = [False]

    async def ack_later():
        await asyncio.sleep(srv.ack_delay / 1000)
        acked[0] = True
        srv._empty(_ACK, req.mid, req.remote)
        srv.remember((req.remote, req.mid), bytes((0x60, 0, req.mid >> 8, req.mid & 255)))

    timer = asyncio.create_task(ack_later()) if req.type == _CON else None
    try:
        r = srv._finish(req, await coro)
    except Exception as e:
        srv.on_error(e)
        r = Message(code=_SERVER_ERROR)
    if timer:
        timer.cancel()
    if acked[0] and r is not None:
        r.type = _CON
    srv._reply(req, r, acked[0])
