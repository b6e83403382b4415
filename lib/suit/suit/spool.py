# Where suit.ota puts a payload while it downloads: a file per URI (FileSpool, the bundle route) or the next
# ESP32 OTA partition itself (PartitionSpool). A spool says where an interrupted download resumes, and gives
# the processor a reader over what it holds.
import os

_PAGE = 4096


class _FileReader:
    def __init__(self, path):
        self.f = open(path, "rb")

    def readinto(self, buf):
        return self.f.readinto(buf) or 0

    def close(self):
        self.f.close()


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
        return _FileReader(self._path(index))

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


class _PartReader:
    def __init__(self, part, size):
        self.part = part
        self.size = size
        self.pos = 0
        self.blk = bytearray(_PAGE)

    def readinto(self, buf):
        # the processor reads in chunks of its chunk_size (4096): one flash block each
        n = min(len(buf), self.size - self.pos)
        done = 0
        while done < n:
            b, off = divmod(self.pos, _PAGE)
            self.part.readblocks(b, self.blk)
            take = min(_PAGE - off, n - done)
            buf[done:done + take] = self.blk[off:off + take]
            done += take
            self.pos += take
        return n

    def close(self):
        pass


class _PartWriter:
    def __init__(self, part, offset, capacity):
        self.part = part
        self.capacity = capacity
        self.buf = bytearray(_PAGE)
        self.fill = 0
        self.block = offset // _PAGE
        self.stored = offset

    def write(self, data):
        n = len(data)
        if self.block * _PAGE + self.fill + n > self.capacity:
            raise OSError(27)  # EFBIG: the image is bigger than the OTA partition
        p = 0
        while p < n:
            take = min(_PAGE - self.fill, n - p)
            self.buf[self.fill:self.fill + take] = data[p:p + take]
            self.fill += take
            p += take
            if self.fill == _PAGE:
                self.part.writeblocks(self.block, self.buf)  # erases the sector first
                self.block += 1
                self.fill = 0
                self.stored = self.block * _PAGE

    def flush(self):
        return self.stored  # only whole written blocks survive a restart

    def close(self):
        if self.fill:
            for i in range(self.fill, _PAGE):
                self.buf[i] = 0xFF
            self.part.writeblocks(self.block, self.buf)
            self.fill = 0


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

    def _part(self):
        return self.running.get_next_update()

    def resume_at(self, index, stored, bs):
        return stored // _PAGE * _PAGE

    def writer(self, index, offset):
        p = self._part()
        return _PartWriter(p, offset, p.ioctl(4, 0) * p.ioctl(5, 0))

    def reader(self, index, size):
        return _PartReader(self._part(), size)

    def clear(self):
        pass

    def interrupted(self):
        return False  # set_boot() is the OTA commit: nothing to finish
