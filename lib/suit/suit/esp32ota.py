# SUIT driver for the ESP32 firmware image through esp32.Partition: the image streams into the next OTA
# partition in 4 KiB blocks (writeblocks erases each sector first), and set_boot() runs only in commit(),
# after the processor checked digest and size. Condition component-slot is true for the partition
# get_next_update() returns (ota_0 is slot 0, ota_1 slot 1). The first-boot health check and
# mark_app_valid_cancel_rollback() belong to the update flow, not to this driver.
from suit import SuitError, const
from suit.bundle import _Reader
_COMPONENT_UNSUPPORTED = const(6)
_OPERATION_FAILED = const(11)

_BLOCK = 4096
_IOCTL_BLOCK_COUNT = 4
_IOCTL_BLOCK_SIZE = 5


class _PartitionWriter:
    def __init__(self, part, capacity):
        self._part = part
        self._capacity = capacity
        self._buf = bytearray(_BLOCK)
        self._fill = 0
        self._block = 0
        self.size = 0

    def write(self, data):
        n = len(data)
        if self.size + n > self._capacity:
            raise SuitError(_OPERATION_FAILED, "image bigger than the OTA partition (%d bytes)" % self._capacity)
        self.size += n
        p = 0
        buf = self._buf
        while p < n:
            take = min(_BLOCK - self._fill, n - p)
            buf[self._fill:self._fill + take] = data[p:p + take]
            self._fill += take
            p += take
            if self._fill == _BLOCK:
                self._part.writeblocks(self._block, buf)
                self._block += 1
                self._fill = 0

    def close(self):
        if self._fill:
            buf = self._buf
            for i in range(self._fill, _BLOCK):
                buf[i] = 0xFF  # erased flash
            self._part.writeblocks(self._block, buf)
            self._fill = 0


class _PartitionReader:
    def __init__(self, part, size):
        self._part = part
        self._size = size
        self._pos = 0
        self._blk = bytearray(_BLOCK)

    def readinto(self, buf):
        n = min(len(buf), self._size - self._pos)
        done = 0
        while done < n:
            block, off = divmod(self._pos, _BLOCK)
            self._part.readblocks(block, self._blk)
            take = min(_BLOCK - off, n - done)
            buf[done:done + take] = self._blk[off:off + take]
            done += take
            self._pos += take
        return n

    def close(self):
        pass


class OtaDriver:
    """component: the identifier of the firmware image component (default ["firmware"]); running: the running
    esp32.Partition (default esp32.Partition(esp32.Partition.RUNNING)). identity, sources, on_invoke as for
    suit.bundle.BundleDriver."""

    def __init__(self, identity, component=(b"firmware",), running=None, sources=None, on_invoke=None):
        if running is None:
            import esp32
            running = esp32.Partition(esp32.Partition.RUNNING)
        self.ident = identity
        self.component = tuple(component)
        self.running = running
        self.sources = sources or {}
        self.on_invoke = on_invoke
        self.reports = []
        self._staged = None
        self._size = 0

    def _check(self, cid):
        if tuple(cid) != self.component:
            raise SuitError(_COMPONENT_UNSUPPORTED, "component %r is not this device's firmware" % (cid,))

    def _next(self):
        return self.running.get_next_update()

    def identity(self, param):
        return self.ident.get(param)

    def slot_matches(self, cid, slot):
        self._check(cid)
        label = self._next().info()[4]
        return label == "ota_%d" % slot

    def fetch(self, uri):
        if callable(self.sources):
            return self.sources(uri)
        src = self.sources.get(uri)
        if src is None:
            raise OSError("no source for %s" % uri)
        return _Reader(open(src, "rb"))

    def stage(self, cid, slot, size):
        self._check(cid)
        part = self._next()
        if slot is not None and not self.slot_matches(cid, slot):
            raise SuitError(_COMPONENT_UNSUPPORTED, "slot %d is not the next OTA partition" % slot)
        capacity = part.ioctl(_IOCTL_BLOCK_COUNT, 0) * part.ioctl(_IOCTL_BLOCK_SIZE, 0)
        if size is not None and size > capacity:
            raise SuitError(_OPERATION_FAILED, "image-size %d is bigger than the OTA partition (%d bytes)"
                            % (size, capacity))
        w = _PartitionWriter(part, capacity)
        self._staged = (part, w)
        return w

    def open_read(self, cid):
        """The staged image (its written size); the running image's size is not known here: None."""
        self._check(cid)
        if self._staged is None:
            return None
        part, w = self._staged
        return _PartitionReader(part, w.size)

    def swap(self, a, b):
        raise SuitError(_OPERATION_FAILED, "OTA partitions do not swap")

    def invoke(self, cid, args):
        self._check(cid)
        if self.on_invoke is not None:
            self.on_invoke(cid, args)

    def report(self, data):
        self.reports.append(data)
        del self.reports[:-4]

    def commit(self, seq):
        if self._staged is not None:
            self._staged[0].set_boot()  # the bootloader starts the new image at the next reset
            self._staged = None

    def finish(self):
        pass

    def abort(self):
        self._staged = None  # the half-written partition is never booted

    def recover(self):
        return None
