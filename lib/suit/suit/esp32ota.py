# The ESP32 firmware image through esp32.Partition: the SUIT driver (OtaDriver), on the next OTA partition, in
# 4 KiB blocks, through the writer and reader suit.esp32spool.PartitionSpool streams the OTA download through (they
# live there, so a download does not load this module): no block buffer of their own, so an update
# holds one chunk buffer, the processor's. set_boot() runs only in commit(), after the processor checked digest
# and size. Condition component-slot is true for the partition get_next_update() returns (ota_0 is slot 0, ota_1
# slot 1). The first-boot health check and mark_app_valid_cancel_rollback() belong to the update flow
# (suit.ota_boot).
from suit import SuitError, const
from suit.esp32spool import PartitionReader, PartitionWriter  # noqa: F401 (public here too)

_COMPONENT_UNSUPPORTED = const(6)
_OPERATION_FAILED = const(11)

_IOCTL_BLOCK_COUNT = const(4)
_IOCTL_BLOCK_SIZE = const(5)


def _capacity(part):
    return part.ioctl(_IOCTL_BLOCK_COUNT, 0) * part.ioctl(_IOCTL_BLOCK_SIZE, 0)


def _running():
    import esp32
    return esp32.Partition(esp32.Partition.RUNNING)


class OtaDriver:
    """component: the identifier of the firmware image component (default ["firmware"]); running: the running
    esp32.Partition (default esp32.Partition(esp32.Partition.RUNNING)). identity, sources, on_invoke as for
    suit.bundle.BundleDriver."""

    def __init__(self, identity, component=(b"firmware",), running=None, sources=None, on_invoke=None):
        self.ident = identity
        self.component = tuple(component)
        self.running = running or _running()
        self.sources = sources or {}
        self.on_invoke = on_invoke
        self.reports = []
        self._staged = None

    def _check(self, cid):
        if tuple(cid) != self.component:
            raise SuitError(_COMPONENT_UNSUPPORTED, "component %r is not this device's firmware" % (cid,))

    def _next(self):
        return self.running.get_next_update()

    def identity(self, param):
        return self.ident.get(param)

    def slot_matches(self, cid, slot):
        self._check(cid)
        return self._next().info()[4] == "ota_%d" % slot

    def fetch(self, uri):
        if callable(self.sources):
            return self.sources(uri)
        src = self.sources.get(uri)
        if src is None:
            raise OSError("no source for %s" % uri)
        from suit.spool import FileReader
        return FileReader(src)

    def stage(self, cid, slot, size):
        """A writer at the start of the next partition (nothing is erased before the first write)."""
        self._check(cid)
        part = self._next()
        if slot is not None and not self.slot_matches(cid, slot):
            raise SuitError(_COMPONENT_UNSUPPORTED, "slot %d is not the next OTA partition" % slot)
        capacity = _capacity(part)
        if size is not None and size > capacity:
            raise SuitError(_OPERATION_FAILED, "image-size %d is bigger than the OTA partition (%d bytes)"
                            % (size, capacity))
        w = PartitionWriter(part, 0, capacity)
        self._staged = (part, w)
        return w

    def open_read(self, cid):
        """The staged image (its written size); the running image's size is not known here: None."""
        self._check(cid)
        if self._staged is None:
            return None
        part, w = self._staged
        return PartitionReader(part, w.size)

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
