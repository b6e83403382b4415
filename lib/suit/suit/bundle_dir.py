# Directory components of the Python bundle (suit.bundle), loaded only when a manifest names one: a component
# identifier whose last element is empty, ['lib', 'pkg', h''], is the directory <root>/lib/pkg/.
#
# Its image is its files as a CBOR sequence (RFC 8742): for each file, in byte order of the paths, its path
# inside the directory (a text string, parts joined by "/") and then its content (a byte string), every head in
# preferred serialization. A tree therefore has exactly one image: DirReader rebuilds it from the files (for
# image-match and copy), and DirWriter refuses any other encoding, so what was hashed while installing is
# what a later check reads back. The directory is staged whole and committed with one rename, like a file.
import os

from suit import SuitError, const
_CBOR_PARSE = const(1)
_COMPONENT_UNSUPPORTED = const(6)
_OPERATION_FAILED = const(11)

_NAME_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+"
_MAX_PATH = const(96)  # bytes of one file's path inside the directory
_MAX_FILES = const(64)
_TEXT = const(3)
_BYTES = const(2)
_HEAD = const(0)  # DirWriter states: reading a head, a path, a content
_PATH = const(1)
_CONTENT = const(2)


def _head(major, n):
    """The preferred-serialization head of a CBOR text/byte string of n bytes."""
    mt = major << 5
    if n < 24:
        return bytes((mt | n,))
    for ai, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes((mt | ai,)) + n.to_bytes(size, "big")
    raise ValueError


def check_path(rel):
    """rel (bytes): a relative path of safe parts, none empty, "." or ".."."""
    if not rel or len(rel) > _MAX_PATH:
        return False
    for part in rel.split(b"/"):
        if not part or part == b"." or part == b"..":
            return False
        for c in part:
            if c not in _NAME_CHARS:
                return False
    return True


def rmtree(fs, path):
    """Remove a file or a directory tree (no error when it is not there)."""
    try:
        fs.remove(path)
        return
    except OSError:
        pass
    for name in fs.listdir(path):
        rmtree(fs, path + "/" + name)
    try:
        os.rmdir(path)
    except OSError:
        pass


def files_of(fs, path, prefix=b""):
    """The relative paths (bytes) of every file under path, sorted."""
    out = []
    for name in fs.listdir(path):
        rel = prefix + name.encode()
        full = path + "/" + name
        if fs.isdir(full):
            out += files_of(fs, full, rel + b"/")
        else:
            out.append(rel)
        if len(out) > _MAX_FILES:
            raise SuitError(_COMPONENT_UNSUPPORTED, "directory %s has more than %d files" % (path, _MAX_FILES))
    out.sort()
    return out


class DirWriter:
    """Unpacks a directory image into the directory `path` (created empty) as it streams in."""

    def __init__(self, fs, path, max_file):
        self._fs = fs
        self._path = path
        self._max_file = max_file
        rmtree(fs, path)  # an earlier staging of the same component in this run
        fs.makedirs(path)
        self._state = _HEAD
        self._want = _TEXT
        self._hb = bytearray(9)  # the head being read
        self._hn = 0
        self._rel = bytearray()
        self._last = None
        self._left = 0
        self._f = None
        self._files = 0
        self._broken = False

    def _fail(self, why):
        raise SuitError(_CBOR_PARSE, "directory image: " + why)

    def write(self, data):
        try:
            self._unpack(memoryview(data))
        except Exception:
            self._broken = True  # close() then only closes: the failure that stopped the stream is the one told
            raise

    def _unpack(self, mv):
        i, n = 0, len(mv)
        while i < n:
            st = self._state
            if st == _HEAD:
                hb = self._hb
                hb[self._hn] = mv[i]
                self._hn += 1
                i += 1
                ai = hb[0] & 0x1F
                need = 1 if ai < 24 else 1 + (1 << (ai - 24)) if ai < 28 else 0
                if hb[0] >> 5 != self._want or not need:
                    self._fail("expected a %s string" % ("text" if self._want == _TEXT else "byte"))
                if self._hn < need:
                    continue
                size = ai if need == 1 else int.from_bytes(hb[1:need], "big")
                if bytes(hb[0:need]) != _head(self._want, size):
                    self._fail("a head that is not in preferred serialization")
                self._hn = 0
                self._left = size
                if self._want == _TEXT:
                    if size > _MAX_PATH:
                        self._fail("a path longer than %d bytes" % _MAX_PATH)
                    self._rel = bytearray()
                    self._state = _PATH
                    if size == 0:
                        self._path_done()
                else:
                    self._open(size)
            elif st == _PATH:
                k = min(self._left, n - i)
                self._rel += mv[i:i + k]
                i += k
                self._left -= k
                if not self._left:
                    self._path_done()
            else:
                k = min(self._left, n - i)
                self._f.write(mv[i:i + k])
                i += k
                self._left -= k
                if not self._left:
                    self._end_file()

    def _path_done(self):
        rel = bytes(self._rel)
        if not check_path(rel):
            self._fail("bad path %r" % rel)
        if self._last is not None and rel <= self._last:
            self._fail("paths out of order (%r after %r)" % (rel, self._last))
        self._files += 1
        if self._files > _MAX_FILES:
            self._fail("more than %d files" % _MAX_FILES)
        self._last = rel
        self._state = _HEAD
        self._want = _BYTES

    def _open(self, size):
        if self._max_file is not None and size > self._max_file:
            raise SuitError(_OPERATION_FAILED, "a file of %d bytes is bigger than the slot (%d bytes)"
                            % (size, self._max_file))
        rel = self._last.decode()
        full = self._path + "/" + rel
        i = full.rfind("/")
        if i > len(self._path):
            self._fs.makedirs(full[:i])
        self._f = self._fs.open(full, "wb")
        self._state = _CONTENT
        if size == 0:
            self._end_file()

    def _end_file(self):
        f, self._f = self._f, None
        f.close()
        self._state = _HEAD
        self._want = _TEXT

    def close(self):
        if self._f is not None:
            f, self._f = self._f, None
            f.close()
        if not self._broken and (self._state != _HEAD or self._want != _TEXT or self._hn):
            self._broken = True
            self._fail("truncated")


class DirReader:
    """The image of the directory at `path`, rebuilt from its files: readinto(buf) -> n, 0 at the end."""

    def __init__(self, fs, path):
        self._fs = fs
        self._path = path
        self._files = files_of(fs, path)
        self._next = 0
        self._pending = b""  # head and path bytes not yet returned
        self._f = None

    def readinto(self, buf):
        mv = memoryview(buf)
        got = 0
        while got < len(mv):
            if self._pending:
                k = min(len(self._pending), len(mv) - got)
                mv[got:got + k] = self._pending[0:k]
                self._pending = self._pending[k:]
                got += k
                continue
            if self._f is not None:
                k = self._f.readinto(mv[got:])
                if k:
                    got += k
                    continue
                self._f.close()
                self._f = None
            if self._next >= len(self._files):
                break
            rel = self._files[self._next]
            self._next += 1
            full = self._path + "/" + rel.decode()
            self._pending = _head(_TEXT, len(rel)) + rel + _head(_BYTES, os.stat(full)[6])
            self._f = self._fs.open(full, "rb")
        return got

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None
