# suit.esp32ota on both runtimes against a RAM partition with esp32.Partition's interface (readblocks,
# writeblocks, ioctl, info, get_next_update, set_boot): there is no ESP32 here, so this checks the driver's
# block handling and that set_boot() happens only after every check passed, not the flash itself.
import hgtest

from cose.key import CoseKey
from suit import REASONS
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

    def info(self):
        return (0, 0x10 + int(self.label[-1]), 0x10000, len(self.data), self.label, False)

    def ioctl(self, op, arg):
        return {4: self.blocks, 5: 4096}[op]

    def writeblocks(self, n, buf):
        assert len(buf) == 4096, "whole sectors only"
        self.data[n * 4096:(n + 1) * 4096] = buf
        self.writes += 1

    def readblocks(self, n, buf):
        buf[:] = self.data[n * 4096:n * 4096 + len(buf)]

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
    assert bytes(table[1].data[:len(ab)]) == ab and table[1].writes == 2
    assert table[1].data[len(ab):] == b"\xff" * (len(table[1].data) - len(ab)), "padded as erased flash"
    assert table[0].writes == 0, "the running image is never written"


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
