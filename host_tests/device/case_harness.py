# Checks on the harness itself: both runtimes run these.
import hgtest
MP_HEAP = "64k"  # its budget on the VM (a board's heap x2): boards with less skip it


def test_runtime_identity():
    import sys
    assert hgtest.RUNTIME == ("micropython" if sys.implementation.name == "micropython" else "cpython")


def test_rng_is_identical_on_both_runtimes():
    r = hgtest.Rng(12345)
    got = [r.next64() for _ in range(3)]
    # Computed once on CPython; MicroPython must produce the same stream.
    assert got == [10977518812293740004, 13893246733018840292, 1412386850724336324], got


def test_raises_helper():
    e = hgtest.raises(ValueError, int, "x")
    assert isinstance(e, ValueError)
    hgtest.raises(AssertionError, hgtest.raises, ValueError, int, "1")
