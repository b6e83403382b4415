# The `esp32` module of the ESP32 virtual board (OTA partition table): runs on the MicroPython VM, never on
# CPython, and never goes into a board build (vboard_boot.py loads it from the host's tools/ when the board's
# table has ota_0/ota_1). It models what SUIT updates use of MicroPython's esp32.Partition and of the ESP-IDF
# bootloader with rollback enabled (CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE, on in every esp32 build):
# - Partition(label | BOOT | RUNNING), info() -> (type, subtype, addr, size, label, encrypted), find(),
#   readblocks/writeblocks(block, buf[, offset]) and ioctl(4 count, 5 size, 6 erase) in 4096-byte blocks;
#   writeblocks without an offset erases each block first, as the port does (with one it only writes, and
#   flash can only clear bits: the bytes become old & new);
# - get_next_update(): the OTA slot after the running one; set_boot(): the image must start with the ESP image
#   magic 0xE9 (else OSError, as esp_ota_set_boot_partition refuses it), then otadata gets a new entry (a
#   higher sequence, state new); mark_app_valid_cancel_rollback(): the running slot's entry becomes valid;
# - the bootloader runs at a hard reset (bootloader()): it boots the entry with the highest sequence that is
#   not aborted; a new entry becomes pending-verify as it boots; one still pending-verify at the next reset
#   was never confirmed: it becomes aborted and the previous slot boots. Blank otadata boots ota_0.
# The partitions' bytes live in a file beside the flash directory (FLASH.ota: ota_0 then ota_1, sparse, read
# as erased 0xFF beyond its end), otadata in FLASH.otadata, so tests compare them with the host's image.
# Not modelled: the image format beyond its magic byte (segments, the appended SHA-256, secure boot, flash
# encryption), the factory partition and the ota_seq CRCs of real otadata sectors, the bootloader's own
# anti-rollback (secure version), erase/write timing and wear, partial-sector power cuts. The running
# "image" is the VM itself: which slot runs changes what esp32.Partition reports, not the code that runs.
BOOT = 0
RUNNING = 1
TYPE_APP = 0
TYPE_DATA = 1
_BLOCK = 4096
_MAGIC = 0xE9
_NEW = "new"
_PENDING = "pending-verify"
_VALID = "valid"
_ABORTED = "aborted"
_OTADATA = 512  # bytes of the otadata record
_CHUNK = 256
_ERASED = b"\xff" * _CHUNK
_scratch = bytearray(_CHUNK)

_cfg = {}  # file, slots [(label, size)], otadata, running


def configure(store, otadata, slots):
    """store, otadata: the two files, open "r+b" (opened before the boot script mounts the flash directory
    at "/", so they stay reachable); slots: [(label, size)] of ota_0, ota_1 in table order."""
    _cfg["file"] = store
    _cfg["otadata"] = otadata
    _cfg["slots"] = slots
    _cfg["running"] = _read_running()


def _otadata_lines():
    f = _cfg["otadata"]
    f.seek(0)
    return (f.read(_OTADATA) or b"").decode().split("\n")


def _otadata():
    lines = _otadata_lines()
    entries = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] != "running":
            entries[parts[0]] = [int(parts[1]), parts[2]]
    return entries


def _read_running():
    for line in _otadata_lines():
        if line.startswith("running "):
            return line.split()[1]
    return _cfg["slots"][0][0]


def _write_otadata(entries, running):
    lines = ["running " + running]
    for label in entries:
        lines.append("%s %d %s" % (label, entries[label][0], entries[label][1]))
    text = ("\n".join(lines) + "\n").encode()
    f = _cfg["otadata"]
    f.seek(0)
    f.write(text + b" " * (_OTADATA - len(text)))  # a fixed-size record: the file cannot be truncated
    f.flush()


def otadata_state(label):
    """The otadata state of a slot ("new", "pending-verify", "valid", "aborted"), or None."""
    e = _otadata().get(label)
    return e[1] if e else None


def bootloader():
    """A hard reset: choose the slot to boot and update otadata as the ESP-IDF bootloader does."""
    entries = _otadata()
    for label in entries:
        if entries[label][1] == _PENDING:  # booted once and never confirmed: roll back
            entries[label][1] = _ABORTED
    best = None
    for label in entries:
        seq, state = entries[label]
        if state != _ABORTED and (best is None or seq > entries[best][0]):
            best = label
    if best is None:
        best = _cfg["slots"][0][0]
    elif entries[best][1] == _NEW:
        entries[best][1] = _PENDING
    _cfg["running"] = best
    _write_otadata(entries, best)
    return best


def _slot(label):
    off = 0
    for name, size in _cfg["slots"]:
        if name == label:
            return off, size
        off += size
    raise ValueError("partition not found")


class Partition:
    BOOT = BOOT
    RUNNING = RUNNING
    TYPE_APP = TYPE_APP
    TYPE_DATA = TYPE_DATA

    def __init__(self, id, block_size=_BLOCK):
        if id == RUNNING:
            id = _cfg["running"]
        elif id == BOOT:
            entries = _otadata()
            best = None
            for label in entries:
                if entries[label][1] != _ABORTED and (best is None or entries[label][0] > entries[best][0]):
                    best = label
            id = best or _cfg["running"]
        self.label = id
        self.offset, self.size = _slot(id)
        self.block_size = block_size

    @staticmethod
    def find(type=TYPE_APP, subtype=0xFF, label=None, block_size=_BLOCK):
        if type != TYPE_APP:
            return []
        return [Partition(name, block_size) for name, _ in _cfg["slots"] if label is None or label == name]

    def info(self):
        return (TYPE_APP, 0x10 + int(self.label[-1]), 0x10000 + self.offset, self.size, self.label, False)

    def __repr__(self):
        return "<Partition type=0, subtype=%d, address=%d, size=%d, label=%s, encrypted=0>" % (
            self.info()[1], self.info()[2], self.size, self.label)

    def _io(self, block, buf, offset, write):
        # In pieces of _CHUNK bytes: a board does this in C, so the fake module keeps its own heap small.
        addr = block * self.block_size + (offset or 0)
        n = len(buf)
        if addr < 0 or addr + n > self.size:
            raise OSError(22)
        f = _cfg["file"]
        if write:
            _extend(f, self.offset + addr)
        f.seek(self.offset + addr)
        if not write:
            got = f.readinto(buf) or 0
            for i in range(got, n):
                buf[i] = 0xFF  # beyond the file's end: erased flash
            return
        if offset is None:  # the blocks were erased first: the new bytes as they are
            f.write(buf)
        else:  # no erase: NOR flash only clears bits
            old = _scratch
            mv = memoryview(buf)
            for p in range(0, n, _CHUNK):
                k = min(_CHUNK, n - p)
                f.seek(self.offset + addr + p)
                got = f.readinto(memoryview(old)[:k]) or 0
                f.seek(self.offset + addr + p)
                if memoryview(old)[:got] == _ERASED[:got]:  # erased: the bytes go in as they are
                    f.write(mv[p:p + k])
                    continue
                for i in range(k):
                    old[i] = (old[i] if i < got else 0xFF) & mv[p + i]
                f.write(memoryview(old)[:k])
        f.flush()

    def readblocks(self, block, buf, offset=None):
        self._io(block, buf, offset, False)

    def writeblocks(self, block, buf, offset=None):
        if offset is None and len(buf) % self.block_size:
            raise OSError(22)
        self._io(block, buf, offset, True)

    def ioctl(self, cmd, arg):
        if cmd == 4:
            return self.size // self.block_size
        if cmd == 5:
            return self.block_size
        if cmd == 6:
            if not 0 <= arg < self.size // self.block_size:
                raise OSError(22)
            f = _cfg["file"]
            at = self.offset + arg * self.block_size
            _extend(f, at)
            f.seek(at)
            for _ in range(self.block_size // _CHUNK):
                f.write(_ERASED)
            f.flush()
            return 0
        return 0 if cmd in (1, 2, 3) else None

    def set_boot(self):
        head = bytearray(1)
        self.readblocks(0, head, 0)
        if head[0] != _MAGIC:
            raise OSError(-5379)  # ESP_ERR_OTA_VALIDATE_FAILED (0x1503): not an app image
        entries = _otadata()
        top = 0
        for label in entries:
            top = max(top, entries[label][0])
        entries[self.label] = [top + 1, _NEW]
        _write_otadata(entries, _cfg["running"])

    def get_next_update(self):
        labels = [name for name, _ in _cfg["slots"]]
        i = labels.index(self.label) if self.label in labels else -1
        return Partition(labels[(i + 1) % len(labels)], self.block_size)

    @staticmethod
    def mark_app_valid_cancel_rollback():
        entries = _otadata()
        run = _cfg["running"]
        if run in entries:
            entries[run][1] = _VALID
            _write_otadata(entries, run)



def _extend(f, to):
    # Grow the sparse file with erased bytes up to `to` (a hole would read back as zeros).
    end = f.seek(0, 2)
    while end < to:
        end += f.write(_ERASED[:min(_CHUNK, to - end)])
