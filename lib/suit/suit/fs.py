# The file operations the SUIT storage backends use: this module's functions (open, rename, remove, sync, exists,
# isdir, listdir, makedirs), taken by a driver as its fs, so that a fault injector (suit.faults.FaultyFs, with the
# same functions) can cut power at any chosen read, write, close, rename, remove or sync. A module, not a class:
# on a board every class and method is heap.
import os
from os import remove, rename  # noqa: F401 (two of this module's operations, as os has them)

# errno numbers (the same on Linux and in MicroPython's VFS: LittleFS, FAT) are written as numbers here: a name
# imported for const() would be one more slot in this module's globals

open = open  # noqa: PLW0127 (the builtin, as one of this module's operations)
sync = getattr(os, "sync", int)  # the unix port has no os.sync: int() stands in, a call that does nothing


def Fs():  # noqa: N802 (named as the object it stands for)
    """The file operations as an object: this module (the drivers' fs unless they are given one)."""
    from suit import fs
    return fs


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def isdir(path):
    try:
        return os.stat(path)[0] & 0x4000 != 0  # S_IFDIR
    except OSError:
        return False


def listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def makedirs(path):
    """Create path and its parents (no error when they exist)."""
    try:
        os.mkdir(path)  # one call in the usual case, where the parent exists
    except OSError as e:
        if e.args[0] == 17:  # EEXIST
            return
        i = path.rfind("/")
        if e.args[0] != 2 or i < 1:  # ENOENT
            raise
        makedirs(path[:i])
        try:
            os.mkdir(path)
        except OSError as e2:
            if e2.args[0] != 17:
                raise
