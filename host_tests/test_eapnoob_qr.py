"""The device's QR encoder (lib/eapnoob/eapnoob/qr.py) checked part by part with independent tools: its function
patterns and format information are segno's for the same version, level L and mask 0; the codewords read back out of
its modules are the byte-mode bit stream with the standard pads and reedsolo's Reed-Solomon blocks; zxing-cpp reads
it; a clear error past version 6. (segno's own data modules differ: it puts one more zero byte after the
terminator, also readable.) The VM prints it on its console in host_tests/test_coapeap_vm.py, decoded there."""
from __future__ import annotations

import random
import sys

import pytest
import reedsolo
import segno

from hourglass import mpvm

sys.path.insert(0, str(mpvm.LIB / "eapnoob"))
from eapnoob import qr  # noqa: E402

L = {1: (19, 7, 1), 2: (34, 10, 1), 3: (55, 15, 1), 4: (80, 20, 1), 5: (108, 26, 1), 6: (136, 18, 2)}


def function_modules(side: int) -> set[tuple[int, int]]:
    f = set()
    for r in range(side):
        for c in range(side):
            if (r < 9 and c < 9) or (r < 9 and c >= side - 8) or (r >= side - 8 and c < 9) or r == 6 or c == 6:
                f.add((r, c))
    if side > 21:
        a = side - 7
        f |= {(a + r, a + c) for r in range(-2, 3) for c in range(-2, 3)}
    return f


def read_codewords(side: int, get) -> bytes:
    fn = function_modules(side)
    bits = []
    right = side - 1
    while right >= 1:
        if right == 6:
            right = 5
        up = ((right + 1) & 2) == 0
        for k in range(side):
            r = side - 1 - k if up else k
            for c in (right, right - 1):
                if (r, c) not in fn:
                    bits.append(int(bool(get(r, c))) ^ ((r + c) % 2 == 0))
        right -= 2
    return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits) - 7, 8))


def expected_codewords(data: bytes, version: int) -> bytes:
    dc, ecn, blocks = L[version]
    bits = "0100" + format(len(data), "08b") + "".join(format(b, "08b") for b in data) + "0000"
    bits += "0" * (-len(bits) % 8)
    stream = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
    stream += bytes((0xEC, 0x11) * dc)[:dc - len(stream)]
    size = dc // blocks
    parts = [stream[i * size:(i + 1) * size] for i in range(blocks)]
    rs = reedsolo.RSCodec(ecn, c_exp=8, prim=0x11D, fcr=0, generator=2)
    ecs = [bytes(rs.encode(p))[-ecn:] for p in parts]
    return bytes(p[i] for i in range(size) for p in parts) + bytes(e[i] for i in range(ecn) for e in ecs)


@pytest.mark.parametrize("n", [1, 2, 17, 18, 32, 33, 53, 54, 78, 79, 106, 107, 130, 134])
def test_modules_and_codewords(n):
    rnd = random.Random(n)
    data = bytes(rnd.randrange(256) for _ in range(n))
    side, m = qr.matrix(data)
    version = (side - 17) // 4
    ref = segno.make(data, error="l", mask=0, mode="byte", boost_error=False, micro=False, version=version)
    assert side == ref.symbol_size(border=0)[0] and ref.version == version
    assert min(v for v, (dc, _, _) in L.items() if n + 2 <= dc) == version, "the smallest version that fits"
    for r, c in function_modules(side):
        assert bool(m[r * side + c]) == bool(ref.matrix[r][c]), (r, c)
    assert read_codewords(side, lambda r, c: m[r * side + c]) == expected_codewords(data, version)


def test_too_long_is_refused():
    with pytest.raises(ValueError):
        qr.matrix(b"x" * 135)


def test_text_form_reads_back():
    from test_coapeap_vm import decode_console_qr
    url = "https://noob.example/oob?P=07KRU6OgqX0HIeRFldnbSW&N=x3JlolaPciK4Wa6XlMJxtQ&H=ZSGSEb6w3pFxFlqRmTBEuA"
    assert decode_console_qr(list(qr.text(url))) == url
