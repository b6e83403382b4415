"""Host-test helper: send one raw CoAP datagram to 127.0.0.1 until an answer comes (the board may still be
booting, and a lost CON would otherwise wait for its own retransmission)."""
from __future__ import annotations

import socket
import time


def request_until_reply(request: bytes, port: int, timeout: float = 30.0) -> bytes | None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.sendto(request, ("127.0.0.1", port))
            try:
                return s.recv(1500)
            except OSError:
                continue
        return None
    finally:
        s.close()
