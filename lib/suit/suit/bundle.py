# SUIT driver over the files of the Python bundle (every board; the only firmware route on the nRF52840).
# A component identifier names a file under the bundle root: ['lib', 'app.py'] is <root>/lib/app.py.
#
# New images are staged in <root>/.suit/stage/, never over the live files. commit() writes a journal
# (<root>/.suit/journal: the sequence number and the stage -> target pairs) with one rename as the commit point,
# then moves each old file to .suit/old/ and each staged file into place. A power cut before that rename leaves
# the old bundle (recover() drops the staging); after it, recover() at boot finishes the moves: each pair is
# decided by whether its staged file still exists, so replaying the journal any number of times is safe.
import os
from os import remove, rename  # noqa: F401 (two of the file operations, as os has them)

from suit import const
# BundleDriver.path: the paths every install uses, made once (on MicroPython each new str is looked up among all
# interned strings: ~9K instructions)
_PREFIX = const(0)  # <root>/
_STAGE = const(1)  # <root>/.suit/stage/
_OLD = const(2)  # <root>/.suit/old/
_JOURNAL = const(3)  # <root>/.suit/journal
_JOURNAL_NEW = const(4)
# BundleDriver.state
_STAGED = const(0)  # {relative target path: stage file name} of this run
_COUNT = const(1)  # stage names handed out since the last clean-up: str(0), str(1), ...
_NAMES = const(2)  # those names (None: not known, list the directories)
_ASIDE = const(3)  # the names whose old files the last commit moved to .suit/old

_NAME_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+"

# The file operations of the storage backends, this module's functions (open, rename, remove, sync, exists,
# isdir, listdir, makedirs; suit.fs names the same ones): the drivers' fs unless they are given one, so that a
# fault injector (suit.faults.FaultyFs, with the same functions) can cut power at any chosen operation. Module
# functions, not a class: on a board every class and method is heap. errno numbers (the same on Linux and in
# MicroPython's VFS: LittleFS, FAT) are written as numbers: a name imported for const() is a global's slot.
open = open  # noqa: PLW0127 (the builtin, as one of the operations)
sync = getattr(os, "sync", int)  # the unix port has no os.sync: int() stands in, a call that does nothing


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


class BundleDriver:
    """identity: {1: vendor-id, 2: class-id, 24: device-id} (bytes); sources: uri -> local path (the fetch
    source on the host, or a callable uri -> reader); fs: the file operations (this module's functions unless
    given); on_invoke(cid, args); maxsize: bytes per component. open_read, slot_matches, swap, invoke, recover and
    abort are suit.bundle_more's, loaded on first use, as is whatever a plain file component does not need.
    Method arguments are named by names the VM has already interned (each new one is a string on the board)."""

    def __init__(self, root, identity, sources=None, fs=None, on_invoke=None, maxsize=None):
        self.root = root = root.rstrip("/")
        self.identity = identity.get  # identity(param) -> bytes or None
        self.sources = sources or {}
        if fs is None:
            from suit import bundle as fs
        self.fs = fs
        self.on_invoke = on_invoke
        self.maxsize = maxsize
        self.reports = []
        j = root + "/.suit/journal"
        self.path = (root + "/", root + "/.suit/stage/", root + "/.suit/old/", j, j + ".new")
        self.state = [{}, 0, None, []]  # type: list  # (one type each: the _STAGED.. indices)

    def __getattr__(self, name):
        # the driver methods a plain install does not call: suit.bundle_more's functions of the driver (named in
        # one bytes constant: it is not interned at import, as each short str is)
        if b" " + name.encode() + b" " not in b" open_read slot_matches swap invoke recover abort ":
            raise AttributeError(name)
        from suit import bundle_more
        f = getattr(bundle_more, name)
        return lambda *args: f(self, *args)

    def fetch(self, name):
        """A reader over the source of URI name."""
        if callable(self.sources):
            return self.sources(name)
        src = self.sources.get(name)
        if src is None:
            raise OSError(2)  # ENOENT: no source for the URI
        return self.fs.open(src, "rb")  # readinto() -> 0 at the end is all the processor needs

    def stage(self, key, index, length):
        """A writer for component key (its identifier) into slot index, length bytes if known. A file named by
        plain names, no size cap: here; anything else: suit.bundle_more.stage."""
        parts = []
        for p in key:
            if not p or p.strip(_NAME_CHARS) or p[0] == 46 and p[-1] == 46 and len(p) < 3:  # "." or ".."
                parts = None  # a directory, a binary identifier, or a refusal
                break
            parts.append(str(p, "utf-8"))
        if parts and key[0] != b".suit" and not index and self.maxsize is None:
            rel = "/".join(parts)
            st = self.state
            name = st[_STAGED].get(rel)
            if name is None:
                name = st[_STAGED][rel] = str(st[_COUNT])  # a name not used since the last clean-up
                st[_COUNT] += 1
                if st[_NAMES] is not None:
                    st[_NAMES].append(name)
            path = self.path[_STAGE] + name
            try:
                return self.fs.open(path, "wb")
            except OSError:  # .suit/stage is missing (a first install)
                self.fs.makedirs(self.path[_STAGE][:-1])
                return self.fs.open(path, "wb")
        from suit import bundle_more
        return bundle_more.stage(self, key, index, length)

    def report(self, data):
        self.reports.append(data)
        del self.reports[:-4]

    def commit(self, n):
        fs = self.fs
        path = self.path
        st = self.state
        staged = st[_STAGED]
        fs.sync()
        # the journal is built as bytes: "seq N", then "stage-name relative-path" per file, then "end"
        j = bytearray(b"seq %d\n" % n)  # n: the sequence number
        pairs = []
        for rel in staged:
            name = staged[rel]
            pairs.append((name, rel))
            j += name.encode()
            j.append(32)  # " "
            j += rel.encode()
            j.append(10)  # "\n"
        j += b"end\n"
        f = fs.open(path[_JOURNAL_NEW], "wb")
        f.write(j)
        f.close()
        fs.sync()
        fs.rename(path[_JOURNAL_NEW], path[_JOURNAL])  # the commit point
        fs.sync()
        st[_STAGED] = {}
        # each staged file into place, the old one aside first (a rename over a live file is a flush on ext4, and
        # suit.ota_boot.restore_bundle puts it back). This first run knows nothing moved yet; a replay after a
        # power cut is suit.bundle_more.replay.
        aside = []
        names = st[_NAMES]
        for name, rel in pairs:
            target = path[_PREFIX] + rel
            old = path[_OLD] + name
            try:
                fs.rename(target, old)
                aside.append(name)
            except OSError:
                if fs.exists(target):  # not a new file: .suit/old is missing
                    fs.makedirs(path[_OLD][:-1])
                    fs.rename(target, old)
                    aside.append(name)
            stage = path[_STAGE] + name
            try:
                fs.rename(stage, target)  # the staged file (or directory) into place
            except OSError:
                fs.makedirs(target[:target.rfind("/")])  # a new file in a new directory
                fs.rename(stage, target)
            if names is not None and name in names:
                names.remove(name)  # what stays handed out is left in .suit/stage (a swap's)
        st[_ASIDE] = aside
        fs.sync()

    def finish(self):
        """After the commit (and the stored sequence number): drop the old files, then the journal."""
        fs = self.fs
        st = self.state
        names = st[_NAMES]
        # .suit/old: the files the commit moved aside; .suit/stage: the names handed out; every file of both when
        # the driver does not know them (None: the first clean-up after a boot)
        for d, some in ((self.path[_OLD], None if names is None else st[_ASIDE]), (self.path[_STAGE], names)):
            for name in fs.listdir(d[:-1]) if some is None else some:
                try:
                    fs.remove(d + name)
                except OSError:
                    if fs.isdir(d + name):  # a directory component's tree
                        from suit import bundle_more
                        bundle_more.remove(fs, d + name)
                    elif some is None:
                        raise
        st[_NAMES] = []
        st[_ASIDE] = []
        try:
            fs.remove(self.path[_JOURNAL])
        except OSError:
            pass
