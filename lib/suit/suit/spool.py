# Where suit.ota puts a payload while it downloads: a file per URI (FileSpool, the bundle route); the next ESP32
# OTA partition itself is suit.esp32spool's PartitionSpool (also reachable here). A spool says where an
# interrupted download resumes, and gives the processor a reader over what it holds. The processor's readers
# over a file range and over a buffer (integrated payloads, content parameters) are here too.
import os


class FileReader:
    """A file (or `length` bytes of it from `offset`) as the processor reads a payload (readinto, close)."""
    def __init__(self, path, offset=0, length=None):
        self.f = open(path, "rb")
        if offset:
            self.f.seek(offset)
        self.left = length

    def readinto(self, buf):
        if self.left is None:
            return self.f.readinto(buf) or 0
        if self.left < len(buf):
            buf = memoryview(buf)[0:self.left]
        n = self.f.readinto(buf) or 0
        self.left -= n
        return n

    def close(self):
        self.f.close()


class MemReader:
    """A reader over a buffer (integrated payloads, content parameters)."""

    def __init__(self, mv):
        self.mv = mv
        self.pos = 0

    def readinto(self, buf):
        n = min(len(buf), len(self.mv) - self.pos)
        buf[0:n] = self.mv[self.pos:self.pos + n]
        self.pos += n
        return n

    def close(self):
        pass


def payload_reader(env, name):
    """A reader over integrated payload `name` of a suit.envelope.Envelope, or None when it has none."""
    p = env.payloads.get(name)
    if p is None:
        return None
    if isinstance(p, tuple):
        return FileReader(env.path, p[0], p[1])
    return MemReader(p)


class _FileWriter:
    def __init__(self, path, offset):
        if offset:
            self.f = open(path, "r+b")
            self.f.seek(offset)
        else:
            self.f = open(path, "wb")
        self.stored = offset

    def write(self, data):
        self.f.write(data)
        self.stored += len(data)

    def flush(self):
        self.f.flush()
        return self.stored

    def close(self):
        self.f.close()


class FileSpool:
    """Downloads go to files under <root>/.suit/dl/ (the bundle route); the processor then stages them."""
    in_place = False

    def __init__(self, root):
        self.root = root.rstrip("/")
        self.dir = self.root + "/.suit/dl"

    def _path(self, index):
        return "%s/%d" % (self.dir, index)

    def resume_at(self, index, stored, bs):
        """Where a download resumes: the stored bytes, down to a whole block, no further than the file."""
        try:
            size = os.stat(self._path(index))[6]
        except OSError:
            return 0
        return min(size, stored) // bs * bs

    def writer(self, index, offset):
        # <root>/.suit/dl made here with os.mkdir, not suit.fs.makedirs: suit.fs is suit.bundle's operations, and
        # a download must not load the driver (an open() below names any failure)
        for path in (self.root, self.root + "/.suit", self.dir):
            try:
                os.mkdir(path)
            except OSError:
                pass  # there already
        return _FileWriter(self._path(index), offset)

    def reader(self, index, size):
        return FileReader(self._path(index))

    def clear(self):
        try:
            for name in os.listdir(self.dir):
                os.remove(self.dir + "/" + name)
        except OSError:
            pass

    def interrupted(self):
        """Whether a bundle commit's journal is left (a power cut): the processor's recover() ends it."""
        try:
            os.stat(self.root + "/.suit/journal")
            return True
        except OSError:
            return False


def __getattr__(name):
    # the ESP32 OTA partition's spool, writer and reader are suit.esp32spool's (an OTA board loads only that)
    if name in ("PartitionSpool", "PartitionWriter", "PartitionReader"):
        from suit import esp32spool
        return getattr(esp32spool, name)
    raise AttributeError(name)
