# Where suit.ota puts a payload while it downloads: a file per URI (FileSpool, the bundle route) or the next
# ESP32 OTA partition itself (PartitionSpool, through PartitionWriter and PartitionReader, which suit.esp32ota's
# driver uses too: a page is erased (ioctl 6) when its first byte is written, bytes go to and come from the
# caller's buffer with the offset forms of writeblocks/readblocks). A spool says where an interrupted download
# resumes, and gives the processor a reader over what it holds. The processor's readers over a file range and
# over a buffer (integrated payloads, content parameters) are here too.
import os

from suit import const


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
        from suit.fs import Fs
        Fs().makedirs(self.dir)
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


class PartitionSpool:
    """The firmware image streams straight into the next OTA partition (esp32.Partition), where the
    processor's OTA driver would put it; the processor then reads it back through its digest and the driver
    only records it for set_boot(). running: the running esp32.Partition."""
    in_place = True

    def __init__(self, running=None):
        if running is None:
            import esp32
            running = esp32.Partition(esp32.Partition.RUNNING)
        self.running = running

    def resume_at(self, index, stored, bs):
        return stored // 4096 * 4096  # the page being written when the download stopped is written again

    def writer(self, index, offset):
        return PartitionWriter(self.running.get_next_update(), offset)

    def reader(self, index, size):
        return PartitionReader(self.running.get_next_update(), size)

    def clear(self):
        pass

    def interrupted(self):
        return False  # set_boot() is the OTA commit: nothing to finish


_BLOCK = const(4096)


class PartitionWriter:
    """Writes an esp32.Partition from byte `offset` (a block boundary) on; stored: the bytes written."""

    def __init__(self, part, offset=0, capacity=None):
        self.part = part
        self.capacity = part.ioctl(4, 0) * part.ioctl(5, 0) if capacity is None else capacity  # blocks x size
        self.stored = offset
        self.size = 0  # written through this writer

    def write(self, data):
        n = len(data)
        pos = self.stored
        if pos + n > self.capacity:
            from suit import SuitError
            raise SuitError(11, "image bigger than the OTA partition (%d bytes)" % self.capacity)
        mv = memoryview(data)
        p = 0
        while p < n:
            block, off = divmod(pos, _BLOCK)
            if off == 0:
                self.part.ioctl(6, block)  # erase
            take = min(_BLOCK - off, n - p)
            self.part.writeblocks(block, mv[p:p + take], off)
            p += take
            pos += take
        self.stored = pos
        self.size += n

    def flush(self):
        return self.stored

    def close(self):
        pass  # the rest of the last page was erased: 0xFF, as erased flash reads


class PartitionReader:
    """The first `size` bytes of an esp32.Partition."""

    def __init__(self, part, size):
        self.part = part
        self.size = size
        self.pos = 0

    def readinto(self, buf):
        n = min(len(buf), self.size - self.pos)
        mv = memoryview(buf)
        done = 0
        while done < n:
            block, off = divmod(self.pos, _BLOCK)
            take = min(_BLOCK - off, n - done)
            self.part.readblocks(block, mv[done:done + take], off)
            done += take
            self.pos += take
        return n

    def close(self):
        pass
