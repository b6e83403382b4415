# Fault injection for the SUIT storage backends, on CPython and on MicroPython alike: FaultyFs is an Fs that
# cuts power (raises suit.faults.PowerCut) at a chosen operation, FaultyStore does the same around a FileStore's puts.
# Tests and benchmarks import it; a device never needs to.
import os

from suit import fs as _fs


class PowerCut(Exception):
    """Raised by a fault injector where the device loses power; nothing after it may run."""


class _FaultyFile:
    def __init__(self, fs, f):
        self._fs = fs
        self._f = f

    def write(self, data):
        if self._tick():
            n = len(data) // 2  # the cut lands in the middle of this write
            self._f.write(data[0:n])
            self._f.close()
            raise PowerCut("power cut in a write")
        return self._f.write(data)

    def _tick(self):
        # a file the cut left open is closed here, so a test's thousands of cuts do not run out of descriptors
        try:
            return self._fs.tick()
        except PowerCut:
            self._f.close()
            raise

    def readinto(self, buf):
        if self._tick():
            self._f.close()
            raise PowerCut("power cut in a read")
        return self._f.readinto(buf)

    def read(self, n=-1):
        return self._f.read(n)

    def close(self):
        cut = self._tick()
        self._f.close()
        if cut:
            raise PowerCut("power cut at close")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


class FaultyFs:
    """The file operations of suit.fs, cutting power (raising PowerCut) at the cut_at-th read, write, close,
    rename, remove or sync (0-based): reads cover fetching and reading back for digests, the rest writing and
    committing. After the cut, every further operation raises too, as nothing runs once the power is gone."""
    exists = staticmethod(_fs.exists)
    isdir = staticmethod(_fs.isdir)
    listdir = staticmethod(_fs.listdir)
    makedirs = staticmethod(_fs.makedirs)

    def __init__(self, cut_at=None):
        self.cut_at = cut_at
        self.ops = 0
        self.cut = False

    def tick(self):
        if self.cut:
            raise PowerCut("no power")
        n = self.ops
        self.ops = n + 1
        if self.cut_at is not None and n == self.cut_at:
            self.cut = True
            return True
        return False

    def open(self, path, mode):
        if self.cut:
            raise PowerCut("no power")
        return _FaultyFile(self, open(path, mode))

    def rename(self, src, dst):
        if self.tick():
            raise PowerCut("power cut before a rename")
        os.rename(src, dst)

    def remove(self, path):
        if self.tick():
            raise PowerCut("power cut before a remove")
        os.remove(path)

    def sync(self):
        if self.tick():
            raise PowerCut("power cut at sync")
        _fs.sync()


class FaultyStore:
    """A FileStore wrapper that cuts power before or after the cut_at-th put (shares the FaultyFs count)."""

    def __init__(self, store, fs):
        self._store = store
        self._fs = fs

    def get(self, name):
        return self._store.get(name)

    def put(self, name, data):
        if self._fs.tick():
            raise PowerCut("power cut before storing %s" % name)
        self._store.put(name, data)
        if self._fs.tick():
            raise PowerCut("power cut after storing %s" % name)

    def delete(self, name):
        self._store.delete(name)
