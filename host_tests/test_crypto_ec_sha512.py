"""The pure-Python SHA-512 (used where hashlib has no sha512: the unix port and the boards) against hashlib,
on any data and any way of splitting it into update() calls."""
from __future__ import annotations

import hashlib

from hypothesis import given, settings, strategies as st

from crypto import sha512


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=700), cuts=st.lists(st.integers(0, 700), max_size=4))
def test_pure_sha512_matches_hashlib(data, cuts):
    h = sha512.Sha512()
    pos = 0
    for c in sorted(cuts):
        c = min(c, len(data))
        h.update(data[pos:c])
        pos = c
    h.update(memoryview(data)[pos:])
    assert h.digest() == hashlib.sha512(data).digest()


def test_block_boundaries():
    for n in range(0, 300):
        data = bytes(range(256))[: n % 256] * (1 + n // 256)
        assert sha512.Sha512(data).digest() == hashlib.sha512(data).digest(), n


def test_new_prefers_hashlib_on_cpython():
    assert sha512.new(b"abc").digest() == hashlib.sha512(b"abc").digest()
    assert sha512._native_sha512 is hashlib.sha512
