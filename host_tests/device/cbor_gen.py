# Seeded generator of CBOR-encodable objects, shared by both runtimes and by the cbor2 cross-check.
# Map keys within one map are all of one encoded length (small ints or one-letter strings), so that RFC 8949
# bytewise key order and cbor2's length-first canonical order agree; host hypothesis tests cover mixed keys.

_FLOATS = (0.0, -0.0, 1.0, -2.5, 65504.0, 100000.0, 1.1, 3.4028234663852886e38, 1.0e300, 5.960464477539063e-8,
           0.333251953125, -1.0e-5, float("inf"), float("-inf"))
_INTS = (0, 1, 23, 24, 255, 256, 65535, 65536, 4294967295, 4294967296, 18446744073709551615,
         18446744073709551616, -1, -24, -25, -256, -257, -18446744073709551616, -18446744073709551617,
         2 ** 100)


def _text(rng):
    alphabet = "abcXYZ \u00fc\u6c34\U00010151"
    return "".join(rng.choice(alphabet) for _ in range(rng.below(8)))


def generate(rng, make_tag, depth=0):
    kind = rng.below(10 if depth < 3 else 6)
    if kind == 0:
        return rng.choice(_INTS)
    if kind == 1:
        return rng.below(1 << (8 * rng.below(9))) - (rng.below(2) * (1 << 40))
    if kind == 2:
        return rng.bytes(rng.below(30))
    if kind == 3:
        return _text(rng)
    if kind == 4:
        return rng.choice(_FLOATS)
    if kind == 5:
        return rng.choice((True, False, None))
    if kind == 6:
        return [generate(rng, make_tag, depth + 1) for _ in range(rng.below(5))]
    if kind == 7:
        m = {}
        ints = rng.below(2) == 0
        for _ in range(rng.below(5)):
            key = rng.below(48) - 24 if ints else rng.choice("abcdefgh")
            m[key] = generate(rng, make_tag, depth + 1)
        return m
    if kind == 8:
        return make_tag(rng.choice((1, 24, 37, 1000, 55799)), generate(rng, make_tag, depth + 1))
    return rng.bytes(rng.below(300))
