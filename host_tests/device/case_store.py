# Atomic state storage (lib/store): the same cases on CPython and on the MicroPython VM.
import os

import hgtest
from store import FileStore, StoreError
MP_HEAP = "64k"  # its budget on the VM (a board's heap x2): boards with less skip it

ROOT = "build/test-store-" + hgtest.RUNTIME


def _fresh(sub):
    root = ROOT + "/" + sub
    try:
        for name in os.listdir(root):
            os.remove(root + "/" + name)
    except OSError:
        pass
    return FileStore(root)


def _write_raw(path, blob):
    with open(path, "wb") as f:
        f.write(blob)


def test_put_get_replace_delete():
    s = _fresh("basic")
    assert s.get("seq") is None
    s.put("seq", b"\x00\x01")
    assert s.get("seq") == b"\x00\x01"
    s.put("seq", b"later value")
    assert s.get("seq") == b"later value"
    assert FileStore(s.root).get("seq") == b"later value", "a new store object (a reboot) reads the same"
    s.put("empty", b"")
    assert s.get("empty") == b""
    s.delete("seq")
    assert s.get("seq") is None
    s.delete("seq")  # deleting what is gone is fine


def test_torn_write_reads_as_old_value():
    s = _fresh("torn")
    s.put("state", b"old")
    _write_raw(s.root + "/state.new", b"half-writ")  # a cut while writing the new value
    assert s.get("state") == b"old"
    s.put("state", b"new")
    assert s.get("state") == b"new"


def test_corrupt_value_reads_as_missing():
    s = _fresh("corrupt")
    s.put("state", b"value")
    with open(s.root + "/state", "rb") as f:
        blob = bytearray(f.read())
    blob[0] ^= 1
    _write_raw(s.root + "/state", blob)
    assert s.get("state") is None
    _write_raw(s.root + "/state", b"ab")  # shorter than the check
    assert s.get("state") is None


def test_cut_between_remove_and_rename_adopts_complete_new_file():
    s = _fresh("fat")
    s.put("state", b"v2")
    os.rename(s.root + "/state", s.root + "/state.new")  # as FAT leaves it after remove, before rename
    assert s.get("state") == b"v2"
    assert "state" in os.listdir(s.root)


def test_incomplete_new_file_without_old_is_missing():
    s = _fresh("fresh")
    _write_raw(s.root + "/state.new", b"torn")
    assert s.get("state") is None


def test_bad_names_refused():
    s = _fresh("names")
    for bad in ("", "a/b", "../x", ".hidden", "x.new", "a" * 33, "sp ace"):
        hgtest.raises(StoreError, s.put, bad, b"x")
        hgtest.raises(StoreError, s.get, bad)




def test_put_writes_a_large_value_without_copying_it():
    # a value of several KB (a SUIT envelope) is stored on a full heap: put() must not need another piece of
    # its size. 18,000 bytes in a 64k VM heap: two copies more (a framed value) do not fit, the value does
    s = _fresh("large")
    try:
        data = bytearray(18000)
    except MemoryError:  # a board's heap after the runner's own work may have no such piece to start with
        hgtest.skip("no 18,000-byte piece free on this heap")
    s.put("env", data)
    data = None
    assert os.stat(ROOT + "/large/env")[6] == 18000 + 4  # the value and its 4-byte check (get() reads it whole)
