# SUIT driver over A/B slot files: each component has two fixed-capacity slots, <root>/<name>.0 and .1, and
# <root>/active records which slot of every component is live, plus the sequence number that made it so.
# An install writes the inactive slot (condition component-slot is true for it); commit() replaces the active
# record in one rename, so all components switch together or not at all. The same shape as the ESP32's OTA
# partitions (suit.esp32ota), in files, on the host and the VM alike.
from suit import SuitError, const
from suit.bundle_more import Writer
from suit.fs import Fs
_COMPONENT_UNSUPPORTED = const(6)
_OPERATION_FAILED = const(11)


class _Reader:
    def __init__(self, f):
        self._f = f

    def readinto(self, buf):
        return self._f.readinto(buf) or 0

    def close(self):
        self._f.close()


class SlotDriver:
    """components: {component name: slot capacity in bytes}; a component identifier's parts joined by "-"
    must name one. identity, sources, on_invoke as for suit.bundle.BundleDriver."""

    def __init__(self, root, identity, components, sources=None, fs=None, on_invoke=None):
        self.root = root.rstrip("/")
        self.ident = identity
        self.capacity = components
        self.sources = sources or {}
        self.fs = fs or Fs()
        self.on_invoke = on_invoke
        self.reports = []
        self.fs.makedirs(self.root)
        self._staged = {}  # name -> slot written in this run
        self._load()

    def _load(self):
        self.active = {}
        self.seq = None
        try:
            with open(self.root + "/active", "rb") as f:
                lines = f.read().decode().split("\n")
        except OSError:
            return
        if not lines or lines[-1] != "" or not lines[0].startswith("seq "):
            return
        self.seq = int(lines[0][4:])
        for line in lines[1:-1]:
            name, slot = line.split(" ")
            self.active[name] = int(slot)

    def _name(self, cid):
        try:
            name = "-".join(str(p, "utf-8") for p in cid)
        except UnicodeError:
            name = None
        if name not in self.capacity:
            raise SuitError(_COMPONENT_UNSUPPORTED, "no slots for component %r" % (cid,))
        return name

    def identity(self, param):
        return self.ident.get(param)

    def active_slot(self, name):
        return self.active.get(name)

    def slot_matches(self, cid, slot):
        active = self.active.get(self._name(cid))
        return slot == (1 if active == 0 else 0)  # the free slot; slot 0 when nothing is installed yet

    def _path(self, name, slot):
        return "%s/%s.%d" % (self.root, name, slot)

    def fetch(self, uri):
        if callable(self.sources):
            return self.sources(uri)
        src = self.sources.get(uri)
        if src is None:
            raise OSError("no source for %s" % uri)
        return _Reader(self.fs.open(src, "rb"))

    def open_read(self, cid):
        name = self._name(cid)
        slot = self._staged.get(name, self.active.get(name))
        if slot is None or not self.fs.exists(self._path(name, slot)):
            return None
        return _Reader(self.fs.open(self._path(name, slot), "rb"))

    def stage(self, cid, slot, size):
        name = self._name(cid)
        free = 1 if self.active.get(name) == 0 else 0
        if slot is None:
            slot = free
        if slot != free:
            raise SuitError(_COMPONENT_UNSUPPORTED,
                            "slot %d of %s is active: install into slot %d" % (slot, name, free))
        cap = self.capacity[name]
        if size is not None and size > cap:
            raise SuitError(_OPERATION_FAILED, "image-size %d is bigger than the slot (%d bytes)" % (size, cap))
        self._staged[name] = slot
        return Writer(self.fs.open(self._path(name, slot), "wb"), cap)

    def swap(self, a, b):
        raise SuitError(_OPERATION_FAILED, "A/B slots do not swap components")

    def invoke(self, cid, args):
        if self.on_invoke is not None:
            self.on_invoke(cid, args)

    def report(self, data):
        self.reports.append(data)
        del self.reports[:-4]

    def commit(self, seq):
        active = dict(self.active)
        active.update(self._staged)
        lines = ["seq %d" % seq]
        for name in sorted(active):
            lines.append("%s %d" % (name, active[name]))
        fs = self.fs
        fs.sync()
        tmp = self.root + "/active.new"
        f = fs.open(tmp, "wb")
        f.write(("\n".join(lines) + "\n").encode())
        f.close()
        fs.sync()
        fs.rename(tmp, self.root + "/active")  # the commit point (LittleFS and POSIX replace in one rename)
        fs.sync()
        self._staged = {}
        self._load()

    def finish(self):
        pass

    def abort(self):
        self._staged = {}

    def recover(self):
        self._staged = {}
        self._load()
        return self.seq
