# Helpers for device cases about the heap and the event loop (imported only by the cases that use them, so
# that every other case file keeps hgtest's small footprint on a board's heap).
from hgtest import IS_MICROPYTHON


def run(main):
    """asyncio.run(main()), then let the tasks it cancelled finish. MicroPython's asyncio.run returns when main
    does: a task cancelled on the way (Endpoint.close) stays queued, and its frame keeps its endpoint (transport,
    caches, whatever the case hung on it) on the heap until the next case's loop runs it."""
    import asyncio

    async def settle():
        await asyncio.sleep(0)
    r = asyncio.run(main())
    asyncio.run(settle())
    return r


def fragment_heap(hole=1024):
    """MicroPython: leave the free heap in holes of at most about `hole` bytes (nothing bigger can be allocated,
    however much is free): fill it with chunks of that size, each followed by a small pin, then free the chunks.
    Returns the pins: the heap stays so while they are kept. CPython: does nothing (returns None)."""
    if not IS_MICROPYTHON:
        return None
    import gc
    gc.collect()
    # Chains of tuples, not lists (a list's item array would be a big hole when freed). A small object goes to
    # the lowest free block, not always after the chunk just made (id() is the address): pins are made until
    # one lands above it (then nothing free is next to the chunk); the others fill small holes lower down.
    pins = chunks = None
    n = 1
    while n:  # until a pass after a collection finds no hole left
        n = 0
        try:
            while True:
                chunks = ((None,) * (hole // 8 - 4), chunks)  # a tuple's items are inline: one allocation
                a = id(chunks[0])
                while True:
                    pins = (pins,)
                    if id(pins) > a:  # the lowest free block is above the chunk: nothing free next to it
                        break
                n += 1
        except MemoryError:
            gc.collect()
    chunks = None
    gc.collect()
    return pins
