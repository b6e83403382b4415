# SUIT driver over the files of the Python bundle (every board; the only firmware route on the nRF52840).
# A component identifier names a file under the bundle root: ['lib', 'app.py'] is <root>/lib/app.py.
#
# New images are staged in <root>/.suit/stage/, never over the live files. commit() writes a journal
# (<root>/.suit/journal: the sequence number and the stage -> target pairs) with one rename as the commit point,
# then moves each old file to .suit/old/ and each staged file into place. A power cut before that rename leaves
# the old bundle (recover() drops the staging); after it, recover() at boot finishes the moves: each pair is
# decided by whether its staged file still exists, so replaying the journal any number of times is safe.
from suit import SuitError, const
from suit.fs import Fs, parent_dir
_COMPONENT_UNSUPPORTED = const(6)
_OPERATION_FAILED = const(11)

_META = ".suit"
_NAME_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+"


class _Reader:
    def __init__(self, f):
        self._f = f

    def readinto(self, buf):
        return self._f.readinto(buf) or 0

    def close(self):
        self._f.close()


class _Writer:
    def __init__(self, f, capacity):
        self._f = f
        self._capacity = capacity
        self._n = 0

    def write(self, data):
        self._n += len(data)
        if self._capacity is not None and self._n > self._capacity:
            raise SuitError(_OPERATION_FAILED, "image bigger than the slot (%d bytes)" % self._capacity)
        self._f.write(data)

    def close(self):
        self._f.close()


class BundleDriver:
    """identity: {1: vendor-id, 2: class-id, 24: device-id} (bytes); sources: uri -> local path (the fetch
    source on the host, or a callable uri -> reader); on_invoke(cid, args); max_file: bytes per component."""

    def __init__(self, root, identity, sources=None, fs=None, on_invoke=None, max_file=None):
        self.root = root.rstrip("/")
        self.ident = identity
        self.sources = sources or {}
        self.fs = fs or Fs()
        self.on_invoke = on_invoke
        self.max_file = max_file
        self.reports = []
        self._meta = self.root + "/" + _META
        self._staged = {}  # target path -> stage file name
        self._count = 0
        self._names = None  # stage names handed out since the last clean-up (None: not known, list the dirs)

    # --------------------------------------------------------------- identity and paths

    def identity(self, param):
        return self.ident.get(param)

    def slot_matches(self, cid, slot):
        return slot == 0  # a bundle file has one slot

    def path_of(self, cid):
        parts = []
        for p in cid:
            s = None
            if p and all(c in _NAME_CHARS for c in p):
                s = str(p, "utf-8")
            if s is None or s in (".", ".."):
                if s is not None or not p:
                    raise SuitError(_COMPONENT_UNSUPPORTED, "component %r is not a bundle path" % (cid,))
                s = "x" + "".join("%02x" % c for c in p)  # binary identifiers name a file by their hex
            parts.append(s)
        if not parts or parts[0] == _META:
            raise SuitError(_COMPONENT_UNSUPPORTED, "component %r is not a bundle path" % (cid,))
        return self.root + "/" + "/".join(parts)

    # --------------------------------------------------------------- reading and staging

    def fetch(self, uri):
        if callable(self.sources):
            return self.sources(uri)
        src = self.sources.get(uri)
        if src is None:
            raise OSError("no source for %s" % uri)
        return _Reader(self.fs.open(src, "rb"))

    def open_read(self, cid):
        path = self.path_of(cid)
        name = self._staged.get(path)
        p = self._meta + "/stage/" + name if name is not None else path
        if not self.fs.exists(p):
            return None
        return _Reader(self.fs.open(p, "rb"))

    def stage(self, cid, slot, size):
        path = self.path_of(cid)
        if slot not in (None, 0):
            raise SuitError(_COMPONENT_UNSUPPORTED, "bundle files have no slot %d" % slot)
        if size is not None and self.max_file is not None and size > self.max_file:
            raise SuitError(_OPERATION_FAILED,
                            "image-size %d is bigger than the slot (%d bytes)" % (size, self.max_file))
        self.fs.makedirs(self._meta + "/stage")
        name = self._staged.get(path)
        if name is None:
            name = self._new_name()
            self._staged[path] = name
        return _Writer(self.fs.open(self._meta + "/stage/" + name, "wb"), self.max_file)

    def _new_name(self):
        name = str(self._count)
        self._count += 1
        if self._names is not None:
            self._names.append(name)
        return name

    def swap(self, a, b):
        pa, pb = self.path_of(a), self.path_of(b)
        ra, rb = self.open_read(a), self.open_read(b)
        if ra is None or rb is None:
            raise SuitError(_OPERATION_FAILED, "swap needs two images")
        # stage both under fresh names (each read from its current file), then exchange the names
        buf = bytearray(1024)
        names = []
        for reader, path in ((rb, pa), (ra, pb)):
            name = self._new_name()
            self.fs.makedirs(self._meta + "/stage")
            w = self.fs.open(self._meta + "/stage/" + name, "wb")
            mv = memoryview(buf)
            while True:
                n = reader.readinto(mv)
                if not n:
                    break
                w.write(mv[0:n])
            w.close()
            reader.close()
            names.append((path, name))
        for path, name in names:
            self._staged[path] = name

    def invoke(self, cid, args):
        if self.on_invoke is not None:
            self.on_invoke(cid, args)

    def report(self, data):
        self.reports.append(data)
        del self.reports[:-4]

    # --------------------------------------------------------------- commit and recovery

    def commit(self, seq):
        fs = self.fs
        fs.sync()
        lines = ["seq %d" % seq]
        for path in self._staged:
            lines.append("%s %s" % (self._staged[path], path[len(self.root) + 1:]))
        tmp = self._meta + "/journal.new"
        f = fs.open(tmp, "wb")
        f.write(("\n".join(lines) + "\nend\n").encode())
        f.close()
        fs.sync()
        fs.rename(tmp, self._meta + "/journal")  # the commit point
        fs.sync()
        self._staged = {}
        self._apply(lines[1:])

    def _apply(self, pairs, replay=False):
        """Move each staged file into place, the old one aside first (a rename over a live file is a flush on
        ext4, and suit.ota_boot.restore_bundle puts it back). A replay after a power cut decides each step by
        what is still there, so replaying any number of times is safe; the first run knows nothing moved."""
        fs = self.fs
        fs.makedirs(self._meta + "/old")
        for line in pairs:
            name, rel = line.split(" ", 1)
            stage = self._meta + "/stage/" + name
            target = self.root + "/" + rel
            old = self._meta + "/old/" + name
            if replay:
                if not fs.exists(stage):
                    continue  # already moved into place
                if fs.exists(target) and not fs.exists(old):
                    fs.rename(target, old)
            else:
                try:
                    fs.rename(target, old)
                except OSError:
                    pass  # a new file
            try:
                fs.rename(stage, target)
            except OSError:
                fs.makedirs(parent_dir(target))  # a new file in a new directory
                fs.rename(stage, target)
        fs.sync()

    def _journal(self):
        try:
            with open(self._meta + "/journal", "rb") as f:
                text = f.read().decode()
        except OSError:
            return None
        lines = text.split("\n")
        if len(lines) < 3 or not lines[0].startswith("seq ") or "end" not in lines:
            return None
        return int(lines[0][4:]), lines[1:lines.index("end")]

    def _clean(self, dirs):
        """Remove this run's files from .suit/<dir>: the names it handed out, or every file when the driver
        does not know them (the first clean-up after a boot)."""
        fs = self.fs
        names = self._names
        for d in dirs:
            for name in fs.listdir(self._meta + "/" + d) if names is None else names:
                try:
                    fs.remove(self._meta + "/" + d + "/" + name)
                except OSError:
                    if names is None:
                        raise
        self._names = []

    def finish(self):
        """After the commit (and the stored sequence number): drop the old files, then the journal."""
        self._clean(("old", "stage"))
        try:
            self.fs.remove(self._meta + "/journal")
        except OSError:
            pass

    def abort(self):
        self._staged = {}
        self._clean(("stage",))
        if self.fs.exists(self._meta + "/journal.new"):
            self.fs.remove(self._meta + "/journal.new")

    def recover(self):
        """At boot: finish a committed update (returns its sequence number) or drop an uncommitted one (None)."""
        self._staged = {}
        self._names = None  # whatever an earlier run left is unknown here
        j = self._journal()
        if j is None:
            self._clean(("stage", "old"))
            if self.fs.exists(self._meta + "/journal.new"):
                self.fs.remove(self._meta + "/journal.new")
            return None
        self._apply(j[1], True)
        return j[0]
