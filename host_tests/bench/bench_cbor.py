# CBOR benchmarks: encode+decode of a SUIT-envelope-sized structure (about 400 bytes encoded).
import cbor

# No target for CBOR: the figures are reported side by side (target None).
COMPARE = [
    ("CBOR SUIT-sized encode+decode: ours on the MicroPython VM vs cbor2 on CPython",
     ("bench_suit_roundtrip", "micropython"), ("bench_suit_roundtrip_cbor2", "cpython"), None),
    ("CBOR SUIT-sized encode+decode: ours vs cbor2, both on CPython",
     ("bench_suit_roundtrip", "cpython"), ("bench_suit_roundtrip_cbor2", "cpython"), None),
]
CPYTHON_ONLY = ("bench_suit_roundtrip_cbor2",)


def out_of_heap_as_memory_error(op):
    """The peak-heap search (benchrunner) takes MemoryError as "does not fit"; the decoder reports running out of
    heap as CBORDecodeError(10, ...) (10: "out of memory"; COSE wraps it in CoseError): raise those as MemoryError
    again."""

    def run():
        try:
            return op()
        except ValueError as e:
            cause = e
            while cause is not None:
                args = cause.args
                if isinstance(cause, cbor.CBORDecodeError) and args and args[0] == 10:
                    raise MemoryError("decoding ran out of heap")
                cause = args[1] if len(args) > 1 and isinstance(args[1], Exception) else None
            raise
    return run


def suit_like_envelope(tag):
    """A structure shaped like a decoded SUIT envelope: digests, UUIDs, command sequences, text."""
    vendor = bytes.fromhex("fa6b4a53d5ad5fdfbe9de663e4d41ffe")
    klass = bytes.fromhex("1492af1425695e48bf429b2d51f2ab45")
    digest = bytes(range(32))
    signature = bytes(range(64))
    manifest = {
        1: 1, 2: 5,
        3: {2: [[b"\x00"], [b"\x01"]],
            4: [12, 0, 20, {1: vendor, 2: klass, 3: [-16, digest], 14: 34768}, 1, 15, 2, 15, 12, 1,
                20, {1: vendor, 2: klass, 3: [-16, digest], 14: 76834}, 1, 15, 2, 15]},
        7: [12, 0, 3, 15, 12, 1, 3, 15],
        9: [12, 0, 23, 2],
        20: [12, 0, 20, {21: "http://example.com/very/long/path/to/file/file.bin"}, 21, 2, 3, 15,
             12, 1, 20, {21: "http://example.com/very/long/path/to/file/file2.bin"}, 21, 2, 3, 15],
        23: {"en": "Example 5: two images, with text describing the update in some detail for the user."},
    }
    return {2: [tag(24, [-16, digest]), [tag(18, [{1: -7}, {}, None, signature])]], 3: manifest}


def bench_suit_roundtrip():
    obj = suit_like_envelope(cbor.Tag)

    def op():
        cbor.loads(cbor.dumps(obj))
    return out_of_heap_as_memory_error(op)


def bench_suit_encode():
    obj = suit_like_envelope(cbor.Tag)
    return lambda: cbor.dumps(obj)


def bench_suit_decode():
    data = cbor.dumps(suit_like_envelope(cbor.Tag))
    return out_of_heap_as_memory_error(lambda: cbor.loads(data))


def bench_suit_deterministic_encode():
    obj = suit_like_envelope(cbor.Tag)
    cbor.dumps(obj, True)  # deterministic ordering loads on first use (_cbor_ext): not part of the operation
    return lambda: cbor.dumps(obj, True)


def bench_suit_walk_streaming():
    # Walk the envelope with the zero-copy Decoder, as SUIT does: skip or view items, build nothing.
    data = cbor.dumps(suit_like_envelope(cbor.Tag))
    cbor.Decoder(data)  # the incremental reads load on first use (_cbor_stream): not part of the operation

    def op():
        dec = cbor.Decoder(data)
        for _ in range(dec.read_map_header()):
            dec.read_uint()
            dec.raw()
    return op


def bench_suit_roundtrip_cbor2():
    import cbor2
    obj = suit_like_envelope(cbor2.CBORTag)

    def op():
        cbor2.loads(cbor2.dumps(obj))
    return op
