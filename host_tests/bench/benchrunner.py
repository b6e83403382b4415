# Runs device benchmarks in one process (MicroPython VM or CPython) and prints one record per benchmark:
#   benchrunner.py <bench_module> [+]bench_name ...
#   @@BENCH <name> <iterations> <elapsed_us> <alloc_bytes>
#   @@PEAK <name> <bytes>     (MicroPython only: the operation's peak live heap beyond its setup)
import sys
import gc
import time

try:
    _ticks_us = time.ticks_us
    _ticks_diff = time.ticks_diff
except AttributeError:  # CPython
    def _ticks_us():
        return int(time.perf_counter() * 1000000)

    def _ticks_diff(a, b):
        return a - b

MIN_TIME_US = 1000000
MIN_ITERATIONS = 3


def measure(op):
    op()  # warm-up: first-call imports and caches are not part of the figure
    n = 0
    t0 = _ticks_us()
    while True:
        op()
        n += 1
        elapsed = _ticks_diff(_ticks_us(), t0)
        if n >= MIN_ITERATIONS and elapsed >= MIN_TIME_US:
            return n, elapsed


def alloc_of_one(op):
    """Bytes allocated by one operation with the GC off (an upper bound of its live heap)."""
    if not hasattr(gc, "mem_alloc"):
        return 0
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        op()
        return gc.mem_alloc() - before
    except MemoryError:
        return -1
    finally:
        gc.enable()
        gc.collect()


def _fill_heap(leave):
    """Allocate ballast until only about `leave` bytes of heap are free; return it to keep it alive."""
    chunks = []
    while True:
        excess = gc.mem_free() - leave
        if excess <= 64:
            return chunks
        size = excess - 32
        while True:
            try:
                chunks.append(bytearray(size))
                break
            except MemoryError:
                size //= 2
                if size < 64:
                    return chunks


def _runs_within(op, leave):
    gc.collect()
    ballast = _fill_heap(leave)
    try:
        op()
        return True
    except MemoryError:
        return False
    finally:
        ballast = None
        gc.collect()


def peak_heap(op, resolution=256):
    """Smallest free heap (to `resolution` bytes) in which one operation completes: its live high-water
    mark of gc.mem_alloc beyond what was allocated before it. Returns -1 if it does not fit at all."""
    gc.collect()
    hi = gc.mem_free() - 1024
    if not _runs_within(op, hi):
        return -1
    lo = 0
    while hi - lo > resolution:
        mid = (lo + hi) // 2
        if _runs_within(op, mid):
            hi = mid
        else:
            lo = mid
    return hi


def main(argv):
    mod = __import__(argv[0])
    for name in argv[1:]:
        with_peak = name.startswith("+")  # "+name": also search the peak heap
        name = name.lstrip("+")
        op = getattr(mod, name)()
        alloc = alloc_of_one(op)
        n, elapsed = measure(op)
        print("@@BENCH", name, n, elapsed, alloc)
        if with_peak and hasattr(gc, "mem_free"):
            print("@@PEAK", name, peak_heap(op))
        op = None
        gc.collect()


if __name__ == "__main__":
    main(sys.argv[1:])
