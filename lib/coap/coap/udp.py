# UDP transport (RFC 7252 over UDP): a non-blocking socket driven by the asyncio loop.
# MicroPython has no datagram endpoint API, so recv() waits on the loop's poller directly (MicroPython)
# or on an add_reader future (CPython).
import socket
import asyncio
from coap import Params

try:
    queue_read = asyncio.core._io_queue.queue_read  # MicroPython: yield this, then the socket is readable
except AttributeError:  # CPython
    queue_read = None
    from coap._cpython import wait_readable


def sockaddr(address):
    """(host, port) from what recvfrom returned: a tuple on CPython and the lwIP ports (ESP32), raw sockaddr
    bytes on the unix port (parsed by coap.rawaddr, loaded only there)."""
    if isinstance(address, tuple):
        return address[0], address[1]
    from coap.rawaddr import parse
    return parse(address)


class UDPTransport:
    """bind=(host, port); port 0 picks a free one (see .address)."""

    def __init__(self, bind=("127.0.0.1", 0), params=None, max_message_size=1280, spin_us=2000, linger_us=300):
        self.params = params or Params()
        self.max_message_size = max_message_size
        # After sending a CON the endpoint polls for the answer before it parks in the event loop: half as long
        # again as the answers took lately, at most this long, and not at all when they took longer (coap.
        # requester). A nearby peer answers within it and the round trip skips the loop's wake-up (0: never).
        self.spin_us = spin_us
        # After answering a request the endpoint waits for the next one this long (whole ms, blocked in poll;
        # a client's next request of a sequence comes within it), serving a burst per wake-up (0: never).
        self.linger_us = linger_us
        ai = socket.getaddrinfo(bind[0], bind[1], 0, socket.SOCK_DGRAM)[0]
        s = socket.socket(ai[0], socket.SOCK_DGRAM)
        s.bind(ai[-1])
        s.setblocking(False)
        self.sock = s
        # MicroPython: await it for readability, then recv_now() takes the datagram. The endpoint's loop
        # does so, so that no datagram is ever on its long-lived coroutine's stack (a stale slot there would
        # keep the last one alive while it waits).
        self.readable = self.poll = None
        if queue_read:
            import select
            self.readable = self
            self.poll = p = select.poll()  # of the socket, for recv_now
            p.register(s, select.POLLIN)
        self._ai = {}
        self.buf = bytearray(64)  # receives a datagram that cannot be allocated (dropped: truncated)
        self.drop = getattr(s, "readinto", None) or getattr(s, "recv_into")  # board / CPython: bound now (it allocates)
        try:
            self.address = sockaddr(s.getsockname())
        except Exception:
            self.address = bind

    def __iter__(self):  # MicroPython: awaiting the transport waits until it is readable; OSError once closed
        s = self.sock
        if s is None:
            raise OSError(9)  # EBADF
        yield queue_read(s)

    async def recv(self):
        # MicroPython waits for readability first: in request/response traffic the answer is never already
        # there, and a failing recvfrom costs an exception. CPython tries first (add_reader is the dearer part).
        wait = self.readable
        while True:
            if wait is not None:
                await wait  # OSError once closed
            x = self.recv_now()
            if x is not None:
                return x
            s = self.sock
            if s is None:
                raise OSError(9)  # EBADF: closed
            if wait is None:
                await wait_readable(s)

    def recv_now(self, ms=0):
        """A datagram already waiting, as recv() returns it, or None. ms: block up to this long in poll for
        one (MicroPython; CPython does not wait). A datagram that cannot be allocated is dropped (None):
        MicroPython's sockets have no recvfrom_into, and readinto is a stream read (it would run queued
        datagrams together and gives no source address), so recvfrom allocates each one."""
        # One local (ms, then the datagram): a frame of at most 11 words (locals, stack, try blocks) lives on
        # the VM's C stack, a bigger one is allocated on the heap at every call.
        if self.sock is None:
            return None
        if self.readable is not None:  # MicroPython: ask poll, a failing recvfrom costs an exception
            for ms in self.poll.ipoll(ms):
                break
            else:
                return None
        try:
            ms = self.sock.recvfrom(self.max_message_size + 1)
        except OSError:  # EAGAIN, or ECONNREFUSED (an ICMP error for something we sent): not fatal
            return None
        except MemoryError:
            return self._drop()
        return ms[0], self._ai.get(ms[1]) or self._peer(ms[1])

    def _drop(self):
        # Collect and read the datagram into a small preallocated buffer, i.e. drop it (CoAP retransmits),
        # so that the socket does not stay readable with it.
        import gc
        gc.collect()
        try:
            self.drop(self.buf)
        except OSError:
            pass

    def _peer(self, address, back=None):
        # raw sockaddr -> (host, port), cached for the last few peers, and back for send() (no getaddrinfo to
        # answer a peer). send() caches its own look-ups through here too (back: the sockaddr of `address`).
        # A few entries only: each is long-lived, and long-lived small objects scattered over the heap by a
        # stream of new peers would fragment it (a large body could then find no contiguous room).
        ai = self._ai
        r = ai.get(address)
        if r is None:
            r = sockaddr(address) if back is None else back
            if back is not None or type(address) is not tuple:
                if len(ai) >= 7:
                    ai.clear()
                ai[address] = r
                if back is None:
                    ai[r] = address
        return r

    def send(self, data, remote):
        a = self._ai.get(remote)
        if a is None:
            a = self._peer(remote, socket.getaddrinfo(remote[0], remote[1], 0, socket.SOCK_DGRAM)[0][-1])
        try:
            self.sock.sendto(data, a)
        except OSError as a:  # (a again: the frame stays within the VM's C stack)
            if a.args[0] not in (11, 35, 105, 111):  # full buffer / refused: CoAP retransmits
                raise

    def close(self):
        s, self.sock = self.sock, None
        if s:
            s.close()
