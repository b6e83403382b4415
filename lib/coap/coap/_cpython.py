# CPython stand-ins for the MicroPython time/asyncio functions the stack uses. Only CPython imports this
# (from the ImportError side of the stack's probes), so boards spend no RAM on it.
try:
    from time import monotonic, perf_counter
    from asyncio import get_running_loop, sleep
except ImportError:
    raise ImportError("coap._cpython is for CPython only")


def ticks_ms():
    return int(monotonic() * 1000)


def ticks_us():
    return int(perf_counter() * 1000000)


def ticks_diff(a, b):
    return a - b


def ticks_add(a, b):
    return a + b


def sleep_ms(ms):
    return sleep(ms / 1000)


async def wait_readable(sock):
    # MicroPython's loop polls sockets itself; CPython's needs add_reader.
    loop = get_running_loop()
    fut = loop.create_future()
    fd = sock.fileno()
    loop.add_reader(fd, fut.set_result, None)
    try:
        await fut
    finally:
        loop.remove_reader(fd)
