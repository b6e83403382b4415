# suit.esp32ota on both runtimes against a RAM partition with esp32.Partition's interface (readblocks,
# writeblocks, ioctl, info, get_next_update, set_boot): there is no ESP32 here, so this checks the driver's
# block handling and that set_boot() happens only after every check passed, not the flash itself.
import hgtest

from cose.key import CoseKey
from suit.reasons import REASONS
from suit.esp32ota import OtaDriver
from suit.processor import Processor

MP_HEAP = "256k"  # lib/ compiled from source, and two RAM partitions; see case_suit_powercut.py
B = "suit/built/"
VENDOR = hgtest.unhex("fa6b4a53d5ad5fdfbe9de663e4d41ffe")
CLASS = hgtest.unhex("1492af1425695e48bf429b2d51f2ab45")


class RamPartition:
    def __init__(self, label, blocks, table):
        self.label = label
        self.data = bytearray(blocks * 4096)
        for i in range(len(self.data)):
            self.data[i] = 0xFF  # erased flash
        self.blocks = blocks
        self.table = table
        self.writes = 0
        self.erases = 0

    def info(self):
        return (0, 0x10 + int(self.label[-1]), 0x10000, len(self.data), self.label, False)

    def ioctl(self, op, arg):
        if op == 6:  # erase one block
            self.data[arg * 4096:(arg + 1) * 4096] = b"\xff" * 4096
            self.erases += 1
            return 0
        return {4: self.blocks, 5: 4096}[op]

    def writeblocks(self, n, buf, offset=None):
        at = n * 4096 + (offset or 0)
        assert at + len(buf) <= len(self.data)
        if offset is None:
            assert len(buf) % 4096 == 0, "whole sectors only"
            self.data[at:at + len(buf)] = buf
        else:  # no erase: flash only clears bits
            for i in range(len(buf)):
                self.data[at + i] &= buf[i]
        self.writes += 1

    def readblocks(self, n, buf, offset=0):
        at = n * 4096 + offset
        buf[:] = self.data[at:at + len(buf)]

    def get_next_update(self):
        return self.table[1 - int(self.label[-1])]

    def set_boot(self):
        self.table.append(self.label)


def _ota(blocks=2):
    table = []
    table += [RamPartition("ota_0", blocks, table), RamPartition("ota_1", blocks, table)]
    return table


def test_image_streams_into_the_next_partition_and_set_boot_comes_last():
    ab = hgtest.read_vector(B + "ab.bin")
    table = _ota()
    drv = OtaDriver({1: VENDOR, 2: CLASS}, component=(b"fw",), running=table[0],
                    sources={"file:ab": hgtest.vector_path(B + "ab.bin")})
    proc = Processor(drv, [CoseKey.decode(hgtest.read_vector(B + "hmac.key"))], chunk_size=1000)
    res = proc.update(hgtest.read_vector(B + "ab_1.suit"))
    assert res.ok, res
    assert table[2:] == ["ota_1"], "ota_1 (slot 1) is the next update when ota_0 runs"
    assert bytes(table[1].data[:len(ab)]) == ab and table[1].erases == 2, "each of the image's 2 pages erased once"
    assert table[1].data[len(ab):] == b"\xff" * (len(table[1].data) - len(ab)), "padded as erased flash"
    assert table[0].writes == table[0].erases == 0, "the running image is never written"


def test_too_big_or_wrong_image_never_sets_boot():
    table = _ota(blocks=1)  # 4 KiB partitions: the 4196-byte image does not fit
    drv = OtaDriver({1: VENDOR, 2: CLASS}, component=(b"fw",), running=table[0],
                    sources={"file:ab": hgtest.vector_path(B + "ab.bin")})
    proc = Processor(drv, [CoseKey.decode(hgtest.read_vector(B + "hmac.key"))])
    res = proc.update(hgtest.read_vector(B + "ab_1.suit"))
    assert REASONS[res.reason] == "operation-failed" and "bigger than the OTA partition" in res.message, res
    assert table[2:] == []
    table = _ota()
    drv = OtaDriver({1: VENDOR, 2: CLASS}, component=(b"fw",), running=table[0],
                    sources={"file:ab": hgtest.vector_path(B + "small.bin")})  # not the image the digest names
    proc = Processor(drv, [CoseKey.decode(hgtest.read_vector(B + "hmac.key"))])
    res = proc.update(hgtest.read_vector(B + "ab_1.suit"))
    assert REASONS[res.reason] == "condition-failed" and table[2:] == [], res
    drv = OtaDriver({1: VENDOR, 2: CLASS}, component=(b"other",), running=table[0])
    res = Processor(drv, [CoseKey.decode(hgtest.read_vector(B + "hmac.key"))]).update(
        hgtest.read_vector(B + "ab_1.suit"))
    assert REASONS[res.reason] == "component-unsupported" and table[2:] == [], res


def test_partition_spool_writes_in_place_and_resumes_at_the_page_being_written():
    from suit.spool import PartitionSpool
    table = _ota(blocks=3)
    image = bytes((i * 7 + i // 4096) & 0xFF for i in range(10000))
    spool = PartitionSpool(running=table[0])
    w = spool.writer(0, 0)
    for i in range(0, 6144, 1024):  # CoAP blocks of 1024 bytes; the transfer stops in the second page
        w.write(image[i:i + 1024])
    assert w.flush() == 6144
    table[1].data[6144:8192] = b"\x00" * 2048  # whatever a cut left in the rest of that page
    at = spool.resume_at(0, w.flush(), 1024)
    assert at == 4096, "the page being written starts again"
    w = spool.writer(0, at)
    for i in range(at, len(image), 1024):
        w.write(image[i:i + 1024])
    w.close()
    r = spool.reader(0, len(image))
    buf = bytearray(4096)
    got = bytearray()
    while True:
        n = r.readinto(buf)
        if not n:
            break
        got += buf[:n]
    assert bytes(got) == image
    assert table[1].erases == 4, "pages 0, 1, 2 and page 1 again"
    assert table[0].writes == 0
