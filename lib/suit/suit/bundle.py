# SUIT driver over the files of the Python bundle (every board; the only firmware route on the nRF52840).
# A component identifier names a file under the bundle root: ['lib', 'app.py'] is <root>/lib/app.py.
#
# New images are staged in <root>/.suit/stage/, never over the live files. commit() writes a journal
# (<root>/.suit/journal: the sequence number and the stage -> target pairs) with one rename as the commit point,
# then moves each old file to .suit/old/ and each staged file into place. A power cut before that rename leaves
# the old bundle (recover() drops the staging); after it, recover() at boot finishes the moves: each pair is
# decided by whether its staged file still exists, so replaying the journal any number of times is safe.
from suit import SuitError, const
from suit.fs import Fs
_COMPONENT_UNSUPPORTED = const(6)
_OPERATION_FAILED = const(11)

_NAME_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+"


class BundleDriver:
    """identity: {1: vendor-id, 2: class-id, 24: device-id} (bytes); sources: uri -> local path (the fetch
    source on the host, or a callable uri -> reader); on_invoke(cid, args); max_file: bytes per component.
    open_read, slot_matches, swap, invoke, recover and abort are suit.bundle_more's, loaded on first use."""

    def __init__(self, root, identity, sources=None, fs=None, on_invoke=None, max_file=None):
        self.root = root = root.rstrip("/")
        self.ident = identity
        self.identity = identity.get  # identity(param) -> bytes or None
        self.sources = sources or {}
        self.fs = fs or Fs()
        self.on_invoke = on_invoke
        self.max_file = max_file
        self.reports = []
        # every path is made once here: on MicroPython each new str is looked up among all interned strings (~9K
        # instructions)
        self._meta = meta = root + "/.suit"
        self._prefix = root + "/"
        self._stage_dir = meta + "/stage/"
        self._old_dir = meta + "/old/"
        self._journal = j = meta + "/journal"
        self._journal_new = j + ".new"
        self._staged = {}  # relative target path -> stage file name
        self._count = 0
        self._names = None  # stage names handed out since the last clean-up (None: not known, list the dirs)
        self._aside = []  # the names whose old files the last commit moved to .suit/old

    def __getattr__(self, name):
        # the driver methods a plain install does not call: suit.bundle_more's functions of the driver
        from suit import bundle_more
        if name not in bundle_more.METHODS:
            raise AttributeError(name)
        f = getattr(bundle_more, name)
        return lambda *args: f(self, *args)

    def _rel_of(self, cid):
        parts = []
        for p in cid:
            if not p or p.strip(_NAME_CHARS) or p[0] == 46 and p[-1] == 46 and len(p) < 3:  # "." or ".."
                from suit.bundle_more import rel_of  # a directory, a binary identifier, or a refusal
                parts = rel_of(cid)
                break
            parts.append(str(p, "utf-8"))
        if not parts or parts[0] == ".suit":
            raise SuitError(_COMPONENT_UNSUPPORTED, (56, cid))
        return "/".join(parts)

    def fetch(self, uri):
        if callable(self.sources):
            return self.sources(uri)
        src = self.sources.get(uri)
        if src is None:
            raise OSError(2)  # ENOENT: no source for uri
        return self.fs.open(src, "rb")  # readinto() -> 0 at the end is all the processor needs

    def stage(self, cid, slot, length):
        rel = self._rel_of(cid)
        if slot is not None and slot != 0:
            raise SuitError(_COMPONENT_UNSUPPORTED, (57, slot))
        cap = self.max_file
        if length is not None and cap is not None and length > cap and cid[-1]:
            raise SuitError(_OPERATION_FAILED, (58, length, cap))
        name = self._staged.get(rel)
        if name is None:
            name = self._staged[rel] = str(self._count)  # a name not used since the last clean-up
            self._count += 1
            if self._names is not None:
                self._names.append(name)
        path = self._stage_dir + name
        fs = self.fs
        if not cid[-1]:
            from suit.bundle_dir import DirWriter
            fs.makedirs(self._meta + "/stage")
            return DirWriter(fs, path, cap)
        try:
            f = fs.open(path, "wb")
        except OSError:
            fs.makedirs(self._meta + "/stage")
            f = fs.open(path, "wb")
        if cap is None:
            return f
        from suit.bundle_more import Writer
        return Writer(f, cap)

    def report(self, data):
        self.reports.append(data)
        del self.reports[:-4]

    def commit(self, n):
        fs = self.fs
        fs.sync()
        # the journal is built as bytes: "seq N", then "stage-name relative-path" per file, then "end"
        j = bytearray(b"seq %d\n" % n)  # n: the sequence number
        pairs = []
        for rel in self._staged:
            name = self._staged[rel]
            pairs.append((name, rel))
            j += name.encode()
            j.append(32)  # " "
            j += rel.encode()
            j.append(10)  # "\n"
        j += b"end\n"
        f = fs.open(self._journal_new, "wb")
        f.write(j)
        f.close()
        fs.sync()
        fs.rename(self._journal_new, self._journal)  # the commit point
        fs.sync()
        self._staged = {}
        # each staged file into place, the old one aside first (a rename over a live file is a flush on ext4, and
        # suit.ota_boot.restore_bundle puts it back). This first run knows nothing moved yet; a replay after a
        # power cut is suit.bundle_more.replay.
        aside = []
        names = self._names
        for name, rel in pairs:
            target = self._prefix + rel
            old = self._old_dir + name
            try:
                fs.rename(target, old)
                aside.append(name)
            except OSError:
                if fs.exists(target):  # not a new file: .suit/old is missing
                    fs.makedirs(self._meta + "/old")
                    fs.rename(target, old)
                    aside.append(name)
            stage = self._stage_dir + name
            try:
                fs.rename(stage, target)  # the staged file (or directory) into place
            except OSError:
                fs.makedirs(target[:target.rfind("/")])  # a new file in a new directory
                fs.rename(stage, target)
            if names is not None and name in names:
                names.remove(name)  # what stays handed out is left in .suit/stage (a swap's)
        self._aside = aside
        fs.sync()

    def _clean(self, d, names):
        """Remove files from .suit/stage/ or .suit/old/ (d): the names given, or every file when the driver does
        not know them (None: the first clean-up after a boot)."""
        fs = self.fs
        for name in fs.listdir(d[:-1]) if names is None else names:
            try:
                fs.remove(d + name)
            except OSError:
                if fs.isdir(d + name):  # a directory component
                    from suit.bundle_dir import rmtree
                    rmtree(fs, d + name)
                elif names is None:
                    raise

    def finish(self):
        """After the commit (and the stored sequence number): drop the old files, then the journal."""
        names = self._names
        self._clean(self._old_dir, None if names is None else self._aside)
        self._clean(self._stage_dir, names)
        self._names = []
        self._aside = []
        try:
            self.fs.remove(self._journal)
        except OSError:
            pass

