# Runs device test cases in one process (MicroPython VM, a board over mpremote, or CPython) and prints
# one framed record per test, which the host parses (tools/hourglass/mpvm.py).
#   micropython hgrunner.py <case_module> [test_name ...]
import sys
import gc

import hgtest

MARK = "@@HG"


def _print_exception(e):
    if hgtest.IS_MICROPYTHON:
        sys.print_exception(e)
    else:
        import traceback
        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stdout)


def run_one(mod, name):
    fn = getattr(mod, name, None)
    print(MARK, "start", name)
    status = "pass"
    gc.collect()
    heap_before = gc.mem_alloc() if hgtest.IS_MICROPYTHON else 0
    t0 = hgtest.ticks_us()
    try:
        if fn is None:
            raise AttributeError("no test named " + name)
        fn()
    except hgtest.SkipTest as e:
        status = "skip"
        print(MARK, "reason", e)
    except Exception as e:  # report every failure, keep running the batch
        status = "fail"
        print(MARK, "traceback")
        _print_exception(e)
    elapsed = hgtest.ticks_diff(hgtest.ticks_us(), t0)
    heap_after = gc.mem_alloc() if hgtest.IS_MICROPYTHON else 0
    print(MARK, "end", name, status, elapsed, heap_after - heap_before)


def main(argv):
    modname = argv[0]
    mod = __import__(modname)
    names = argv[1:] or sorted(n for n in dir(mod) if n.startswith("test_"))
    print(MARK, "batch", modname, len(names))
    for name in names:
        run_one(mod, name)
    print(MARK, "done")


if __name__ == "__main__":
    main(sys.argv[1:])
