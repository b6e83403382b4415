# The file operations the SUIT storage backends use: open, rename, remove, sync, exists, isdir, listdir, makedirs,
# taken by a driver as its fs, so that a fault injector (suit.faults.FaultyFs, with the same functions) can cut
# power at any chosen read, write, close, rename, remove or sync. They are suit.bundle's module functions (the
# bundle driver's own fs, so that a plain install loads one module for both); this module names them for the
# other backends (suit.slots, suit.spool) and the tests.
from suit.bundle import exists, isdir, listdir, makedirs, open, remove, rename, sync  # noqa: F401


def Fs():  # noqa: N802 (named as the object it stands for)
    """The file operations as an object: this module (the drivers' fs unless they are given one)."""
    from suit import fs
    return fs
