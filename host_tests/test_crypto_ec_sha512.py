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


def test_viper_and_pure_sha512_on_the_vm_match_hashlib(tmp_path):
    import json
    import random

    from hourglass import mpvm

    rng = random.Random(512)
    msgs = [rng.randbytes(n) for n in [0, 1, 111, 112, 127, 128, 129, 239, 240, 256] +
            [rng.randrange(0, 700) for _ in range(30)]] + [b"\xff" * 300, b"\x00" * 300]
    (tmp_path / "msgs.json").write_text(json.dumps([m.hex() for m in msgs]))
    (tmp_path / "run.py").write_text(
        "import json, sys\n"
        "from crypto import sha512\n"
        "msgs = [bytes.fromhex(m) for m in json.load(open(sys.argv[1]))]\n"
        "print('FAST', sha512.fast().__name__ if sha512.fast() else None)\n"
        "for m in msgs:\n"
        "    v = sha512.Sha512Viper(m[:len(m) // 3])\n"
        "    v.update(m[len(m) // 3:])\n"
        "    print(v.digest().hex(), sha512.Sha512(m).digest().hex())\n")
    proc = mpvm.run([str(tmp_path / "run.py"), str(tmp_path / "msgs.json")])
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().split("\n")
    assert lines[0] == "FAST Sha512Viper"
    for m, line in zip(msgs, lines[1:]):
        viper, pure = line.split()
        assert viper == pure == hashlib.sha512(m).hexdigest(), len(m)
