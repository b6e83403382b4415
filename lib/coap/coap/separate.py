# Separate responses (RFC 7252 section 5.2.2) for async handlers: when the answer is not ready within
# Endpoint.ack_delay the request gets an empty ACK, and the response follows as a CON. Loaded on the first
# async handler. Uses only public operations: coap.serve's ack, finish, reply; the endpoint's send_con, on_error.
import asyncio
from coap import serve
from coap.msg import Message

try:
    from micropython import const  # compile time on MicroPython: no code, no RAM
except ImportError:
    from coap import const

_CON = const(0)
_SERVER_ERROR = const(160)


async def send_quietly(ep, m, remote):
    # A CON response with retransmission; a peer that never ACKs is the peer's problem.
    try:
        await ep.send_con(m, remote)
    except Exception:
        pass


async def answer_later(ep, req, coro):
    acked = [False]

    async def ack_later():
        await asyncio.sleep(ep.ack_delay / 1000)
        acked[0] = True
        serve.ack(ep, req)

    timer = asyncio.create_task(ack_later()) if req.type == _CON else None
    try:
        r = serve.finish(ep, req, await coro)
    except Exception as e:
        ep.on_error(e)
        r = Message(code=_SERVER_ERROR)
    if timer:
        timer.cancel()
    serve.reply(ep, req, r, acked[0])
