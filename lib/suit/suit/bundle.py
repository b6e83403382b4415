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

_META = ".suit"
_NAME_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+"


def put(fs, stage, target):
    """A staged file (or directory) into place."""
    try:
        fs.rename(stage, target)
    except OSError:
        fs.makedirs(target[:target.rfind("/")])  # a new file in a new directory
        fs.rename(stage, target)


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
        # every path is made once here: on MicroPython each new str is looked up among all interned strings
        self._meta = self.root + "/" + _META
        self._prefix = self.root + "/"
        self._stage_dir = self._meta + "/stage/"
        self._old_dir = self._meta + "/old/"
        self._journal_path = self._meta + "/journal"
        self._journal_new = self._meta + "/journal.new"
        self._staged = {}  # relative target path -> stage file name
        self._rel = {}  # component identifier -> relative path (a few, kept across runs)
        self._count = 0
        self._names = None  # stage names handed out since the last clean-up (None: not known, list the dirs)

    # --------------------------------------------------------------- identity and paths

    def identity(self, param):
        return self.ident.get(param)

    def slot_matches(self, cid, slot):
        return slot == 0  # a bundle file has one slot

    def _rel_of(self, cid):
        rel = self._rel.get(cid)
        if rel is not None:
            return rel
        parts = []
        for p in cid:
            if not p or not all(c in _NAME_CHARS for c in p) or p == b"." or p == b"..":
                from suit.bundle_more import rel_of  # a directory, a binary identifier, or a refusal
                parts = rel_of(cid)
                break
            parts.append(str(p, "utf-8"))
        if not parts or parts[0] == _META:
            raise SuitError(_COMPONENT_UNSUPPORTED, (56, cid))
        rel = parts[0] if len(parts) == 1 else "/".join(parts)
        if len(self._rel) >= 16:
            self._rel = {}
        self._rel[cid] = rel
        return rel

    # --------------------------------------------------------------- reading and staging

    def fetch(self, uri):
        if callable(self.sources):
            return self.sources(uri)
        src = self.sources.get(uri)
        if src is None:
            raise OSError("no source for %s" % uri)
        return self.fs.open(src, "rb")  # readinto() -> 0 at the end is all the processor needs

    def open_read(self, cid):
        rel = self._rel_of(cid)
        name = self._staged.get(rel)
        path = self._stage_dir + name if name is not None else self._prefix + rel
        if not cid[-1]:
            if not self.fs.isdir(path):
                return None
            from suit.bundle_dir import DirReader
            return DirReader(self.fs, path)
        try:
            return self.fs.open(path, "rb")
        except OSError:
            return None

    def stage(self, cid, slot, size):
        rel = self._rel_of(cid)
        if slot not in (None, 0):
            raise SuitError(_COMPONENT_UNSUPPORTED, (57, slot))
        if size is not None and self.max_file is not None and size > self.max_file and cid[-1]:
            raise SuitError(_OPERATION_FAILED,
                            (58, size, self.max_file))
        name = self._staged.get(rel)
        if name is None:
            name = self._staged[rel] = self.new_name()
        if not cid[-1]:
            from suit.bundle_dir import DirWriter
            self.fs.makedirs(self._meta + "/stage")
            return DirWriter(self.fs, self._stage_dir + name, self.max_file)
        path = self._stage_dir + name
        try:
            f = self.fs.open(path, "wb")
        except OSError:
            self.fs.makedirs(self._meta + "/stage")
            f = self.fs.open(path, "wb")
        if self.max_file is None:
            return f
        from suit.bundle_more import Writer
        return Writer(f, self.max_file)

    def new_name(self):
        """A stage file name not used since the last clean-up."""
        name = str(self._count)
        self._count += 1
        if self._names is not None:
            self._names.append(name)
        return name

    def swap(self, a, b):
        from suit.bundle_more import swap
        swap(self, a, b)

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
        # the journal is built as bytes: "seq N", then "stage-name relative-path" per file, then "end"
        j = bytearray(b"seq %d\n" % seq)
        pairs = []
        for rel in self._staged:
            name = self._staged[rel]
            pairs.append((name, rel))
            j += name.encode()
            j += b" "
            j += rel.encode()
            j += b"\n"
        j += b"end\n"
        f = fs.open(self._journal_new, "wb")
        f.write(j)
        f.close()
        fs.sync()
        fs.rename(self._journal_new, self._journal_path)  # the commit point
        fs.sync()
        self._staged = {}
        # each staged file into place, the old one aside first (a rename over a live file is a flush on ext4, and
        # suit.ota_boot.restore_bundle puts it back). This first run knows nothing moved yet; a replay after a
        # power cut is suit.bundle_more.replay.
        for name, rel in pairs:
            stage = self._stage_dir + name
            target = self._prefix + rel
            old = self._old_dir + name
            try:
                fs.rename(target, old)
            except OSError:
                if fs.exists(target):  # not a new file: .suit/old is missing
                    fs.makedirs(self._meta + "/old")
                    fs.rename(target, old)
            put(fs, stage, target)
        fs.sync()

    def _clean(self, dirs):
        """Remove this run's files from .suit/stage and .suit/old: the names it handed out, or every file when
        the driver does not know them (the first clean-up after a boot)."""
        fs = self.fs
        names = self._names
        for d in dirs:
            for name in fs.listdir(d[:-1]) if names is None else names:
                try:
                    fs.remove(d + name)
                except OSError:
                    if fs.isdir(d + name):  # a directory component
                        from suit.bundle_dir import rmtree
                        rmtree(fs, d + name)
                    elif names is None:
                        raise
        self._names = []

    def finish(self):
        """After the commit (and the stored sequence number): drop the old files, then the journal."""
        self._clean((self._old_dir, self._stage_dir))
        try:
            self.fs.remove(self._journal_path)
        except OSError:
            pass

    def abort(self):
        self._staged = {}
        self._clean((self._stage_dir,))
        if self.fs.exists(self._journal_new):
            self.fs.remove(self._journal_new)

    def recover(self):
        """At boot: finish a committed update (returns its sequence number) or drop an uncommitted one (None)."""
        from suit.bundle_more import recover
        return recover(self)
