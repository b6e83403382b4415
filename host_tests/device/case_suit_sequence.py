# suit.processor's reading of command sequences: the usual encodings are read inline, anything else by
# cbor.Decoder; both routes must agree, and refuse the same hostile encodings (both runtimes). In a file of its
# own: case_suit's batch already fills most of its VM heap.
import os
from hashlib import sha256

import cbor
import hgtest

from cose import mac0
from cose.key import CoseKey
from suit.bundle import BundleDriver
from suit.processor import Processor
from suit.reasons import REASONS

MP_HEAP = "256k"
V = "suit/"
ROOT = "build/test-suit-sequence-" + hgtest.RUNTIME
URI = "http://example.com/very/long/path/to/file/file.bin"  # 50 characters: a text head with a one-byte length
COMPONENT = b"plaintext-firmware"


def _mac_key():
    return CoseKey.from_raw(5, hgtest.read_vector(V + "hmac256_key.bin"))


def _install(install, image):
    """A device, and an envelope (MACed with libcsuit's HMAC key) whose shared sequence sets the digest of
    image and whose install sequence is the encoded bytes install."""
    root = ROOT
    hgtest.rmtree(root)
    proc = Processor(BundleDriver(root, {}, sources={URI: hgtest.vector_path(V + "raw_image.bin")}), [_mac_key()],
                     trace=True)
    shared = cbor.dumps([20, {3: cbor.dumps([-16, sha256(image).digest()])}])
    m = {1: 1, 2: 5, 3: cbor.dumps({2: [[COMPONENT]], 4: shared}), 20: install}
    mb = cbor.dumps(m, canonical=True)
    digest = cbor.dumps([-16, sha256(cbor.dumps(mb)).digest()])
    blk = mac0.create(_mac_key(), digest, alg=5, detached=True, include_kid=False)
    return proc, root, cbor.dumps(cbor.Tag(107, {2: cbor.dumps([digest, blk]), 3: mb}))


def _files(root):
    """The files the install left under root (not .suit), as {name: bytes}; {} when it made no root."""
    out = {}
    try:
        names = os.listdir(root)
    except OSError:
        return out
    for n in names:
        if n != ".suit":
            with open(root + "/" + n, "rb") as f:
                out[n] = f.read()
    return out


def _trace(res):
    return " ".join("%d:%d%s" % (s, c, "" if i is None else "/%d" % i) for s, o, c, i in res.trace)


def test_command_sequences_read_inline_and_by_the_decoder_agree():
    # suit.processor reads the usual encodings of a command sequence inline (short array and map heads, one-byte
    # commands, policies and keys, uint, bstr and text values with heads of up to five bytes) and hands anything
    # else (bools among them) to cbor.Decoder: the same sequence in encodings of both kinds runs the same
    # commands to the same result, and the hostile ones fail as cbor-parse on either route, leaving nothing
    # installed
    content = b"plain content"  # 13 bytes
    body = b"\x4d" + content
    usual = b"\x86\x14\xa2\x0e\x0d\x12" + body + b"\x12\x0f\x03\x0f"  # override {14: 13, 18: content}, write, match

    def seq(array=b"\x86", override=b"\x14", map2=b"\xa2", size_key=b"\x0e", size=b"\x0d", bstr=body,
            write=b"\x12", policy=b"\x0f"):
        return array + override + map2 + size_key + size + b"\x12" + bstr + write + policy + b"\x03\x0f"

    assert seq() == usual
    same = {
        "usual": seq(),
        "array in a two-byte head": seq(array=b"\x98\x06"),
        "command in a two-byte head": seq(override=b"\x18\x14", write=b"\x18\x12"),
        "map in a two-byte head": seq(map2=b"\xb8\x02"),
        "key in a two-byte head": seq(size_key=b"\x18\x0e"),
        "uint in a two-byte head": seq(size=b"\x18\x0d"),
        "uint in a three-byte head": seq(size=b"\x19\x00\x0d"),
        "uint in a five-byte head": seq(size=b"\x1a\x00\x00\x00\x0d"),
        "uint in a nine-byte head": seq(size=b"\x1b" + bytes(7) + b"\x0d"),
        "bstr in a two-byte head": seq(bstr=b"\x58\x0d" + content),
        "bstr in a three-byte head": seq(bstr=b"\x59\x00\x0d" + content),
        "indefinite bstr": seq(bstr=b"\x5f\x45" + content[:5] + b"\x48" + content[5:] + b"\xff"),
        "policy in a two-byte head": seq(policy=b"\x18\x0f"),
        "a bool parameter too (soft-failure)": b"\x86\x14\xa3\x0d\xf5" + usual[3:],
    }
    traces = set()
    for name, s in same.items():
        proc, root, env = _install(s, content)
        res = proc.update(env)
        assert res.ok, (name, res)
        assert _files(root) == {COMPONENT.decode(): content}, name
        traces.add(_trace(res))
    assert len(traces) == 1, traces
    # the values are what the reader read: an image-size of 12 fails the write of 13 bytes, inline or not
    for size in (b"\x0c", b"\x18\x0c", b"\x19\x00\x0c"):
        proc, root, env = _install(seq(size=size), content)
        res = proc.update(env)
        assert REASONS[res.reason] == "operation-failed", (size, res)
        assert _files(root) == {}, size
    hostile = {
        "bstr longer than the sequence": b"\x82\x14\xa1\x12\x4e" + content,
        "two-byte bstr head cut off": b"\x82\x14\xa1\x12\x58",
        "two-byte bstr longer than the sequence": b"\x82\x14\xa1\x12\x58\x20" + content,
        "uint head cut off": b"\x82\x14\xa1\x0e\x19\x00",
        "text where a bstr belongs": seq(bstr=b"\x6d" + content),
        "bstr where a uint belongs": seq(size=b"\x41\x0d"),
        "odd number of items": b"\x85" + usual[1:-1],
        "indefinite array (SUIT encodes deterministically)": b"\x9f" + usual[1:] + b"\xff",
        "bytes after the array": usual + b"\x00",
        "map count beyond the end": seq(map2=b"\xa5"),
        "soft-failure not a bool": seq(size_key=b"\x0d", size=b"\xf6"),
        "uri as bytes": seq(size_key=b"\x15", size=b"\x41\x61"),
        "uri not utf-8": seq(size_key=b"\x15", size=b"\x62\xff\xfe"),
        "uri cut off": seq(size_key=b"\x15", size=b"\x78\x40abc"),
    }
    for name, s in hostile.items():
        proc, root, env = _install(s, content)
        res = proc.update(env)
        assert REASONS[res.reason] == "cbor-parse", (name, res)
        assert _files(root) == {}, name
    # a uri in a one-byte-length text head is read inline, and fetches what the source map names
    uri = URI.encode()
    fetch = b"\x86\x14\xa1\x15\x78" + bytes((len(uri),)) + uri + b"\x15\x02\x03\x0f"
    raw = hgtest.read_vector(V + "raw_image.bin")
    for name, s in (("one-byte length", fetch), ("two-byte length", fetch[:4] + b"\x79\x00" + fetch[5:])):
        proc, root, env = _install(s, raw)
        res = proc.update(env)
        assert res.ok, (name, res)
        assert _files(root) == {COMPONENT.decode(): raw}, name
