# What a plain install with suit.bundle does not run, loaded when it is needed: a staged file with a size cap
# (max_file), component identifiers that are not plain names, and the driver methods open_read, slot_matches,
# swap, invoke, abort (a failed install's staging dropped) and recover (the recovery at boot that reads the
# journal a power cut left and replays it):
# suit.bundle's own code, the same driver, split for its heap (BundleDriver.__getattr__ finds them here).
from suit import SuitError, const
_COMPONENT_UNSUPPORTED = const(6)
_OPERATION_FAILED = const(11)
# the BundleDriver methods defined here, as functions of the driver
METHODS = ("open_read", "slot_matches", "swap", "invoke", "recover", "abort")


class Writer:
    """A staged file that refuses more than capacity bytes (BundleDriver's max_file, suit.slots)."""

    def __init__(self, f, capacity):
        self._f = f
        self._capacity = capacity
        self._n = 0

    def write(self, data):
        self._n += len(data)
        if self._capacity is not None and self._n > self._capacity:
            raise SuitError(_OPERATION_FAILED, (55, self._capacity))
        self._f.write(data)

    def close(self):
        self._f.close()


def open_read(drv, cid):
    """The staged image of cid if there is one, else the active one; None when there is neither."""
    rel = drv._rel_of(cid)
    name = drv._staged.get(rel)
    path = drv._stage_dir + name if name is not None else drv._prefix + rel
    if not cid[-1]:
        if not drv.fs.isdir(path):
            return None
        from suit.bundle_dir import DirReader
        return DirReader(drv.fs, path)
    try:
        return drv.fs.open(path, "rb")
    except OSError:
        return None


def slot_matches(drv, cid, slot):
    return slot == 0  # a bundle file has one slot


def invoke(drv, cid, args):
    if drv.on_invoke is not None:
        drv.on_invoke(cid, args)


def swap(drv, a, b):
    if not a[-1] or not b[-1]:
        raise SuitError(_COMPONENT_UNSUPPORTED, "swap of directory components is not supported")
    ra, rb = drv.open_read(a), drv.open_read(b)
    if ra is None or rb is None:
        for r in (ra, rb):
            if r is not None:
                r.close()
        raise SuitError(_OPERATION_FAILED, "swap needs two images")
    # stage both under fresh names (each read from its current file), then exchange the names
    mv = memoryview(bytearray(1024))
    names = []
    for reader, rel in ((rb, drv._rel_of(a)), (ra, drv._rel_of(b))):
        name = str(drv._count)  # a stage name not used since the last clean-up, as BundleDriver.stage makes
        drv._count += 1
        if drv._names is not None:
            drv._names.append(name)
        path = drv._stage_dir + name
        try:
            w = drv.fs.open(path, "wb")
        except OSError:
            drv.fs.makedirs(drv._meta + "/stage")
            w = drv.fs.open(path, "wb")
        while True:
            n = reader.readinto(mv)
            if not n:
                break
            w.write(mv[0:n])
        w.close()
        reader.close()
        names.append((rel, name))
    for rel, name in names:
        drv._staged[rel] = name


def _read_journal(drv):
    """(sequence number, [(stage name, relative path)]) of a complete journal, else None."""
    try:
        with open(drv._journal, "rb") as f:
            text = f.read().decode()
    except OSError:
        return None
    lines = text.split("\n")
    if len(lines) < 3 or not lines[0].startswith("seq ") or "end" not in lines:
        return None
    return int(lines[0][4:]), [line.split(" ", 1) for line in lines[1:lines.index("end")]]


def rel_of(cid):
    """The path parts of a component identifier that is not all plain names: a trailing empty element is a
    directory (suit.bundle_dir), a binary element names a file by its hex; ".", ".." and other empty elements
    are refused."""
    from suit.bundle import _NAME_CHARS
    parts = []
    last = len(cid) - 1
    for i, p in enumerate(cid):
        s = None
        if p and all(c in _NAME_CHARS for c in p):
            s = str(p, "utf-8")
        if s is None or s in (".", ".."):
            if not p and i == last and i:
                continue  # a trailing empty element: the component is the directory
            if s is not None or not p:
                raise SuitError(_COMPONENT_UNSUPPORTED, (56, cid))
            s = "x" + "".join("%02x" % c for c in p)  # binary identifiers name a file by their hex
        parts.append(s)
    return parts


def replay(drv, pairs):
    """Finish the moves of a committed journal after a power cut: each step is decided by what is still
    there, so replaying any number of times is safe."""
    fs = drv.fs
    for name, rel in pairs:
        stage = drv._stage_dir + name
        target = drv._prefix + rel
        old = drv._old_dir + name
        if not fs.exists(stage):
            continue  # already moved into place
        if fs.exists(target) and not fs.exists(old):
            fs.makedirs(drv._meta + "/old")
            fs.rename(target, old)
        try:
            fs.rename(stage, target)
        except OSError:
            fs.makedirs(target[:target.rfind("/")])  # a new file in a new directory
            fs.rename(stage, target)
    fs.sync()


def recover(drv):
    drv._staged = {}
    drv._names = None  # whatever an earlier run left is unknown here
    j = _read_journal(drv)
    if j is None:
        drv._clean(drv._stage_dir, None)
        drv._clean(drv._old_dir, None)
        drv._names = []
        if drv.fs.exists(drv._journal_new):
            drv.fs.remove(drv._journal_new)
        return None
    replay(drv, j[1])
    return j[0]


def abort(drv):
    drv._staged = {}
    drv._clean(drv._stage_dir, drv._names)
    drv._names = []
    if drv.fs.exists(drv._journal_new):
        drv.fs.remove(drv._journal_new)
