# Runs device benchmarks in one process (MicroPython VM or CPython) and prints one record per benchmark:
#   benchrunner.py <bench_module> [+]bench_name ... [~bench_a~bench_b ...]
#   @@BENCH <name> <iterations> <elapsed_us> <alloc_bytes>
#   @@PEAK <name> <bytes>     (MicroPython only: the operation's peak live heap beyond its setup)
#   @@PAIR <a> <b> <rounds> <a calls> <b calls> <median> <p10> <p90> <a_us> <b_us>   ("~a~b": a's time per call
#                             over b's, the two alternating round by round; ratios x1000, a_us/b_us the totals)
import sys
import gc

from hgtest import ticks_us, ticks_diff  # host_tests/device is on the bench path

MIN_TIME_US = 1000000
MIN_ITERATIONS = 3


def measure(op):
    op()  # warm-up: first-call imports and caches are not part of the figure
    n = 0
    t0 = ticks_us()
    while True:
        op()
        n += 1
        elapsed = ticks_diff(ticks_us(), t0)
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


PAIR_ROUNDS = 200
PAIR_ROUND_US = 4000  # each half of a round: long enough to pay the GC passes its own allocation causes


def _batch_for(op, us):
    """How many calls of op take about us microseconds, from its fastest of 16 calls (a preemption or a GC pass
    during one call does not shrink the batch)."""
    best = us
    for _ in range(16):
        t = ticks_us()
        op()
        best = min(best, ticks_diff(ticks_us(), t))
    return max(1, us // max(1, best))


def paired(op_a, op_b):
    """a's time per call over b's, robust to load on a shared machine: PAIR_ROUNDS rounds, each timing a batch of
    a and a batch of b back to back (which goes first alternates), so both halves of a round run under the same
    load. The batches are sized to take equally long, so a preemption is as likely to land in either half.
    Returns (calls per batch of a, of b, sorted per-round ratios x1000, total us of a, total us of b)."""
    op_a()
    op_b()
    na = _batch_for(op_a, PAIR_ROUND_US)
    nb = _batch_for(op_b, PAIR_ROUND_US)
    ratios = []
    total = [0, 0]
    for r in range(PAIR_ROUNDS):
        took = [0, 0]
        for k in ((0, 1) if r & 1 else (1, 0)):
            op, n = (op_b, nb) if k else (op_a, na)
            t = ticks_us()
            for _ in range(n):
                op()
            took[k] = ticks_diff(ticks_us(), t)
            total[k] += took[k]
        ratios.append(took[0] * nb * 1000 // max(1, took[1] * na))
    ratios.sort()
    return na, nb, ratios, total[0], total[1]


def _gc_block_size():
    link = None
    gc.collect()
    before = gc.mem_alloc()
    t = (link, 0)  # not a constant tuple, which the compiler would preallocate
    size = gc.mem_alloc() - before
    del t
    return size


def _runs_within(op, blocks):
    """Fill the heap to the last GC block with a chain of 2-tuples (one block each, so it also fills the
    one-block holes big-int garbage leaves), free the newest `blocks` links, then run the operation."""
    gc.collect()
    chain = None
    try:
        while True:
            chain = (chain, 0)
    except MemoryError:
        pass
    while blocks and chain is not None:  # no range(): the heap is full
        chain = chain[0]
        blocks -= 1
    gc.collect()
    try:
        op()
        ok = True
    except MemoryError:
        ok = False
    chain = None
    gc.collect()
    return ok


def peak_heap(op):
    """The operation's peak live heap beyond what existed before it (the gc.mem_alloc high-water mark),
    to one GC block: the fewest free blocks it completes in, found by bisection. -1 if it never fits."""
    block = _gc_block_size()
    hi = gc.mem_free() // block - 16
    if not _runs_within(op, hi):
        return -1
    lo = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _runs_within(op, mid):
            hi = mid
        else:
            lo = mid
    return hi * block


def main(argv):
    mod = __import__(argv[0])
    for name in argv[1:]:
        if name.startswith("~"):  # "~a~b": a paired comparison
            a, b = name[1:].split("~")
            na, nb, ratios, ta, tb = paired(getattr(mod, a)(), getattr(mod, b)())
            n = len(ratios)
            print("@@PAIR", a, b, n, na, nb, ratios[n // 2], ratios[n // 10], ratios[n - 1 - n // 10], ta, tb)
            gc.collect()
            continue
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
