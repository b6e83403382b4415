# The ESP32 firmware image's spool: the OTA download streams straight into the next OTA partition
# (PartitionSpool, through PartitionWriter), and the processor reads it back (PartitionReader); suit.esp32ota's
# driver uses the writer and reader too. A page is erased (ioctl 6) when its first byte is written, and bytes go
# to and come from the caller's buffer with the offset forms of writeblocks/readblocks: no block buffer of their
# own. Its own module, so an OTA board holds only this while it serves and downloads (suit.spool is the bundle
# route's file spool and the processor's readers; suit.spool.PartitionSpool still names this one).
from suit import const

_BLOCK = const(4096)


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
