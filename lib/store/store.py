# Persistent device state (OSCORE sequence numbers, the SUIT sequence number, the EAP-NOOB peer state):
# one small file per name under a directory, replaced atomically so a power cut leaves the old value or the
# new one, never a torn mix.
#
# A value is written to "<name>.new" with a 4-byte SHA-256 check after it, then renamed over "<name>".
# LittleFS (and POSIX) replace the target in one rename. FAT refuses to rename onto an existing file: there the
# old file is removed first, and a cut between the two steps leaves only "<name>.new", which get() then adopts
# because its check proves it was written in full.
import os

from hashlib import sha256

_CHECK = 4
_NAME_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."


class StoreError(Exception):
    pass


def _unframe(blob):
    if blob is None or len(blob) < _CHECK:
        return None
    data = blob[:-_CHECK]
    return data if sha256(data).digest()[:_CHECK] == blob[-_CHECK:] else None


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _sync():
    sync = getattr(os, "sync", None)
    if sync:
        sync()


class FileStore:
    """get(name) -> bytes or None, put(name, data), delete(name); names are short [A-Za-z0-9._-] words."""

    def __init__(self, root):
        self.root = root.rstrip("/") or "/"
        path = "/" if self.root.startswith("/") else ""
        for part in self.root.split("/"):
            if part:
                path += part
                try:
                    os.mkdir(path)
                except OSError:
                    pass  # it exists
                path += "/"

    def _path(self, name):
        if not name or len(name) > 32 or name[0] == "." or name.endswith(".new"):
            raise StoreError("bad state name %r" % (name,))
        for c in name.encode():
            if c not in _NAME_CHARS:
                raise StoreError("bad state name %r" % (name,))
        return self.root + "/" + name

    def get(self, name):
        path = self._path(name)
        blob = _read(path)
        if blob is not None:
            return _unframe(blob)
        data = _unframe(_read(path + ".new"))
        if data is not None:  # cut between remove and rename (FAT): the new file is complete
            try:
                os.rename(path + ".new", path)
            except OSError:
                pass
        return data

    def put(self, name, data):
        path = self._path(name)
        tmp = path + ".new"
        with open(tmp, "wb") as f:  # the value, then its check: never a framed copy (a value can be KBs)
            f.write(data)
            f.write(sha256(data).digest()[:_CHECK])
        _sync()
        try:
            os.rename(tmp, path)
        except OSError:  # FAT: the target must not exist
            _remove(path)
            os.rename(tmp, path)
        _sync()

    def delete(self, name):
        path = self._path(name)
        _remove(path)
        _remove(path + ".new")
