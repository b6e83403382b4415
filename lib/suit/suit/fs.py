# The file operations the SUIT storage backends use, behind one small object so a fault injector
# (suit.faults) can cut power at any chosen read, write, close, rename, remove or sync.
import os


def _join_parent(path):
    i = path.rfind("/")
    return path[:i] if i > 0 else ""


class Fs:
    """os and open() as the backends need them."""

    def open(self, path, mode):
        return open(path, mode)

    def rename(self, src, dst):
        os.rename(src, dst)

    def remove(self, path):
        os.remove(path)

    def exists(self, path):
        try:
            os.stat(path)
            return True
        except OSError:
            return False

    def size(self, path):
        return os.stat(path)[6]

    def listdir(self, path):
        try:
            return os.listdir(path)
        except OSError:
            return []

    def makedirs(self, path):
        """Create path and its parents (no error when they exist)."""
        cur = "/" if path.startswith("/") else ""
        for part in path.split("/"):
            if part:
                cur += part
                try:
                    os.mkdir(cur)
                except OSError:
                    pass
                cur += "/"

    def rmdir(self, path):
        try:
            os.rmdir(path)
        except OSError:
            pass

    def sync(self):
        sync = getattr(os, "sync", None)
        if sync:
            sync()


parent_dir = _join_parent
