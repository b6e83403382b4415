# What a plain install with suit.bundle does not run, loaded when it is needed: a staged file with a size cap
# (maxsize), component identifiers that are not plain names, and the driver methods open_read, slot_matches,
# swap, invoke, abort (a failed install's staging dropped) and recover (the recovery at boot that reads the
# journal a power cut left and replays it):
# suit.bundle's own code, the same driver, split for its heap (BundleDriver.__getattr__ finds them here).
from suit import SuitError, const
_COMPONENT_UNSUPPORTED = const(6)
_OPERATION_FAILED = const(11)
# suit.bundle's BundleDriver.path and .state indices
_PREFIX = const(0)
_STAGE = const(1)
_OLD = const(2)
_JOURNAL = const(3)
_JOURNAL_NEW = const(4)
_STAGED = const(0)
_COUNT = const(1)
_NAMES = const(2)


class Writer:
    """A staged file that refuses more than capacity bytes (BundleDriver's maxsize, suit.slots)."""

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


def _new_name(drv):
    """A stage name not used since the last clean-up."""
    st = drv.state
    name = str(st[_COUNT])
    st[_COUNT] += 1
    if st[_NAMES] is not None:
        st[_NAMES].append(name)
    return name


def stage(drv, cid, slot, length):
    """BundleDriver.stage for what its own code leaves: a directory component, a binary identifier or a
    refusal, a slot, a size cap (maxsize), a missing .suit/stage."""
    rel = rel_of(cid)
    if slot is not None and slot != 0:
        raise SuitError(_COMPONENT_UNSUPPORTED, (57, slot))
    cap = drv.maxsize
    if length is not None and cap is not None and length > cap and cid[-1]:
        raise SuitError(_OPERATION_FAILED, (58, length, cap))
    staged = drv.state[_STAGED]
    name = staged.get(rel)
    if name is None:
        name = staged[rel] = _new_name(drv)
    path = drv.path[_STAGE] + name
    fs = drv.fs
    if not cid[-1]:
        from suit.bundle_dir import DirWriter
        fs.makedirs(drv.path[_STAGE][:-1])
        return DirWriter(fs, path, cap)
    try:
        f = fs.open(path, "wb")
    except OSError:
        fs.makedirs(drv.path[_STAGE][:-1])
        f = fs.open(path, "wb")
    if cap is None:
        return f
    return Writer(f, cap)


def remove(fs, path):
    """A directory component's tree, removed (BundleDriver.finish)."""
    from suit.bundle_dir import rmtree
    rmtree(fs, path)


def open_read(drv, cid):
    """The staged image of cid if there is one, else the active one; None when there is neither."""
    rel = rel_of(cid)
    name = drv.state[_STAGED].get(rel)
    path = drv.path[_STAGE] + name if name is not None else drv.path[_PREFIX] + rel
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
    for reader, rel in ((rb, rel_of(a)), (ra, rel_of(b))):
        name = _new_name(drv)
        path = drv.path[_STAGE] + name
        try:
            w = drv.fs.open(path, "wb")
        except OSError:
            drv.fs.makedirs(drv.path[_STAGE][:-1])
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
        drv.state[_STAGED][rel] = name


def _read_journal(drv):
    """(sequence number, [(stage name, relative path)]) of a complete journal, else None."""
    try:
        with open(drv.path[_JOURNAL], "rb") as f:
            text = f.read().decode()
    except OSError:
        return None
    lines = text.split("\n")
    if len(lines) < 3 or not lines[0].startswith("seq ") or "end" not in lines:
        return None
    return int(lines[0][4:]), [line.split(" ", 1) for line in lines[1:lines.index("end")]]


def rel_of(cid):
    """The bundle path of a component identifier, relative to the root ("a/b"): a trailing empty element is a
    directory (suit.bundle_dir), a binary element names a file by its hex; ".", "..", other empty elements and
    .suit are refused."""
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
    if not parts or parts[0] == ".suit":
        raise SuitError(_COMPONENT_UNSUPPORTED, (56, cid))
    return "/".join(parts)


def replay(drv, pairs):
    """Finish the moves of a committed journal after a power cut: each step is decided by what is still
    there, so replaying any number of times is safe."""
    fs = drv.fs
    for name, rel in pairs:
        stage = drv.path[_STAGE] + name
        target = drv.path[_PREFIX] + rel
        old = drv.path[_OLD] + name
        if not fs.exists(stage):
            continue  # already moved into place
        if fs.exists(target) and not fs.exists(old):
            fs.makedirs(drv.path[_OLD][:-1])
            fs.rename(target, old)
        try:
            fs.rename(stage, target)
        except OSError:
            fs.makedirs(target[:target.rfind("/")])  # a new file in a new directory
            fs.rename(stage, target)
    fs.sync()


def _clean(drv, d, names):
    """Remove files from .suit/stage/ or .suit/old/ (d): the names given, or every file when the driver does
    not know them (None)."""
    fs = drv.fs
    for name in fs.listdir(d[:-1]) if names is None else names:
        try:
            fs.remove(d + name)
        except OSError:
            if fs.isdir(d + name):  # a directory component
                remove(fs, d + name)
            elif names is None:
                raise


def recover(drv):
    st = drv.state
    st[_STAGED] = {}
    st[_NAMES] = None  # whatever an earlier run left is unknown here
    j = _read_journal(drv)
    if j is None:
        _clean(drv, drv.path[_STAGE], None)
        _clean(drv, drv.path[_OLD], None)
        st[_NAMES] = []
        if drv.fs.exists(drv.path[_JOURNAL_NEW]):
            drv.fs.remove(drv.path[_JOURNAL_NEW])
        return None
    replay(drv, j[1])
    return j[0]


def abort(drv):
    st = drv.state
    st[_STAGED] = {}
    _clean(drv, drv.path[_STAGE], st[_NAMES])
    st[_NAMES] = []
    if drv.fs.exists(drv.path[_JOURNAL_NEW]):
        drv.fs.remove(drv.path[_JOURNAL_NEW])
