# Helpers for device test cases: the same case files run on CPython and on MicroPython (VM or board),
# so this module uses only what both runtimes have.
import os
import sys
import time

IS_MICROPYTHON = sys.implementation.name == "micropython"
RUNTIME = "micropython" if IS_MICROPYTHON else "cpython"

# Where the vector files live, relative to the working directory the runner starts in.
VECTOR_DIR = "host_tests/vectors"


try:
    ticks_us = time.ticks_us
    ticks_diff = time.ticks_diff
except AttributeError:  # CPython
    def ticks_us():
        return int(time.perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b


class SkipTest(Exception):
    pass


def skip(reason):
    raise SkipTest(reason)


def raises(exc_type, fn, *args, **kwargs):
    """Call fn and return the exception it raised; fail unless it is an exc_type."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    except Exception as e:  # a different exception is a failure too; say which
        raise AssertionError("expected %s, got %s: %s" % (exc_type.__name__, type(e).__name__, e))
    raise AssertionError("expected %s, nothing was raised" % exc_type.__name__)


def rmtree(path):
    """Remove a file or a directory tree; nothing there is fine (case files start from a clean folder)."""
    try:
        names = os.listdir(path)
    except OSError:
        try:
            os.remove(path)
        except OSError:
            pass
        return
    for n in names:
        rmtree(path + "/" + n)
    os.rmdir(path)


def vector_path(name):
    return VECTOR_DIR + "/" + name


def read_vector(name):
    with open(vector_path(name), "rb") as f:
        return f.read()


def open_qstr_pool(limit=4096):
    """Intern throwaway names until MicroPython opens its next qstr pool (a jump in the heap), so the names a
    measured phase interns land in room already allocated: a pool is never freed, and a heap-release check
    would otherwise count a whole pool against the phase whenever its names happen to cross a pool's end."""
    import gc
    gc.collect()
    last = gc.mem_alloc()
    for i in range(limit):
        getattr(gc, "hg_qstr_pad_%d" % i, None)  # getattr interns the name it is given
        now = gc.mem_alloc()
        if now - last > 1024:
            return
        last = now
    raise AssertionError("no qstr pool opened after %d names" % limit)


def unhex(s):
    """Hex with optional whitespace -> bytes (test vectors are often printed with spaces)."""
    return bytes.fromhex("".join(s.split()))


class Rng:
    """Seeded xorshift64* generator: identical sequences on both runtimes, unlike `random`."""

    def __init__(self, seed):
        self.s = (seed or 1) & 0xFFFFFFFFFFFFFFFF

    def next64(self):
        s = self.s
        s ^= (s >> 12)
        s ^= (s << 25) & 0xFFFFFFFFFFFFFFFF
        s ^= (s >> 27)
        self.s = s
        return (s * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF

    def below(self, n):
        return self.next64() % n

    def bytes(self, n):
        out = bytearray(n)
        for i in range(n):
            out[i] = self.next64() >> 56
        return bytes(out)

    def choice(self, seq):
        return seq[self.below(len(seq))]
