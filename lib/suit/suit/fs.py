# The file operations the SUIT storage backends use, behind one small object so a fault injector
# (suit.faults) can cut power at any chosen read, write, close, rename, remove or sync.
import os

from suit import const

# errno numbers: the same on Linux and in MicroPython's VFS (LittleFS, FAT)
_EEXIST = const(17)
_ENOENT = const(2)


class Fs:
    """os and open() as the backends need them."""

    open = staticmethod(open)
    rename = staticmethod(os.rename)
    remove = staticmethod(os.remove)
    sync = staticmethod(getattr(os, "sync", None) or (lambda: None))  # the unix port has no os.sync

    def exists(self, path):
        try:
            os.stat(path)
            return True
        except OSError:
            return False

    def isdir(self, path):
        try:
            return os.stat(path)[0] & 0x4000 != 0  # S_IFDIR
        except OSError:
            return False

    def listdir(self, path):
        try:
            return os.listdir(path)
        except OSError:
            return []

    def makedirs(self, path):
        """Create path and its parents (no error when they exist)."""
        try:
            os.mkdir(path)  # one call in the usual case, where the parent exists
        except OSError as e:
            if e.args[0] == _EEXIST:
                return
            i = path.rfind("/")
            if e.args[0] != _ENOENT or i < 1:
                raise
            self.makedirs(path[:i])
            try:
                os.mkdir(path)
            except OSError as e2:
                if e2.args[0] != _EEXIST:
                    raise
