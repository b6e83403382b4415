"""`hourglass flash` / `hourglass image` / `hourglass firmware pin`: exact tool invocations per board (the pyOCD
ones read back with pyOCD's own file loader), refusals reported before the plan (and by a dry run, which then
exits 1), the firmware sha256 pin, the layout check, esptool merge-bin images, and UF2 (family 0xADA52840) images
checked block by block against the spec.

The firmware here is a fake file of random bytes; its sha256 is pinned in a test-only copy of the board folder
(HOURGLASS_BOARDS_DIR), never in boards/ itself.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hourglass import build as hbuild
from hourglass import cli
from hourglass import flash as hflash
from hourglass.boards import BOARDS_DIR, REPO, board_names, load_board, serial_ports
from hourglass.common import BuildLayout, UserError

def _pty_path() -> str:
    """A serial port that exists here: the far end of a pty, kept open for the whole test session."""
    master, slave = os.openpty()
    _PTYS.extend((master, slave))
    return os.ttyname(slave)


_PTYS: list[int] = []
PORT = _pty_path()


def fake_firmware(path: Path, size: int = 200_000, seed: int = 1) -> Path:
    """Random bytes; a .bin starts with the ESP image magic as every ESP32 firmware does."""
    import random

    path.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray(random.Random(seed).randbytes(size))
    if path.suffix == ".bin":
        data[0] = 0xE9
    path.write_bytes(bytes(data))
    return path


def fake_hex(path: Path, start: int, size: int = 60_000) -> Path:
    from intelhex import IntelHex

    raw = fake_firmware(path.with_suffix(".raw"), size)
    ih = IntelHex()
    ih.frombytes(raw.read_bytes(), offset=start)
    path.parent.mkdir(parents=True, exist_ok=True)
    ih.write_hex_file(str(path))
    return path


def pinned_override(tmp_path: Path, name: str, firmware: Path) -> Path:
    """A test-only copy of boards/<name> whose pin is the fake firmware's sha256."""
    boards = tmp_path / "boards"
    shutil.copytree(BOARDS_DIR / name, boards / name)
    toml = boards / name / "board.toml"
    text = toml.read_text()
    digest = hashlib.sha256(firmware.read_bytes()).hexdigest()
    text = text.replace('sha256 = ""', f'sha256 = "{digest}"', 1)
    text = text.replace(load_board(name).firmware_name, firmware.name, 1)
    toml.write_text(text)
    return boards


def uf2_drive(tmp_path: Path) -> Path:
    drive = tmp_path / "XIAO-SENSE"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader 0.6.1\nModel: Seeed XIAO nRF52840\nBoard-ID: nRF52840-XIAO\n")
    return drive


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every board built from a small source tree (fs/ then holds boot.py, main.py, app.mpy)."""
    root = tmp_path_factory.mktemp("flashsrc")
    lib, fw = root / "lib", root / "firmware"
    (lib / "tiny").mkdir(parents=True)
    (lib / "tiny" / "tiny.py").write_text("X = 1\n")
    fw.mkdir()
    for name in ("boot.py", "main.py", "app.py"):
        (fw / name).write_text(f"# {name}\n")
    out = {}
    for name in board_names():
        out[name] = hbuild.build(load_board(name), root / "build" / name, lib, fw).out
    return out


def context(built, name: str, firmware: Path, board=None, **kw) -> hflash.Context:
    board = board or load_board(name)
    return hflash.Context(board, BuildLayout(name, built[name]), firmware, **kw)


def expected_argv(name: str, b: Path, fw: Path, port: str = PORT, drive: str = "/media/hg/XIAO-SENSE") \
        -> tuple[list[list[str]], list[list[str]]]:
    """(flash, image) invocations for each board, spelled out."""
    fs, rom = str(b / "fs.img"), str(b / "romfs.img")
    esp = {
        "ESP32_GENERIC": ("esp32", "0x1000", "0x200000", []),
        "ESP32_GENERIC-OTA": ("esp32", "0x1000", "0x310000", ["--erase-all"]),
        "ESP32_GENERIC_S3": ("esp32s3", "0x0", "0x200000", []),
        "ESP32_GENERIC_C3": ("esp32c3", "0x0", "0x200000", []),
    }
    if name in esp:
        chip, fw_off, fs_off, extra = esp[name]
        return ([["esptool", "--chip", chip, "--port", port, "--baud", "460800", "write-flash", *extra,
                  fw_off, str(fw), fs_off, fs]],
                [["esptool", "--chip", chip, "merge-bin", "--output", str(b / f"{name}-image.bin"),
                  fw_off, str(fw), fs_off, fs]])
    if name == "PCA10056":
        return ([["pyocd", "load", "--no-wait", "--target", "nrf52840", "--erase", "chip",
                  str(b / "PCA10056-image.hex")]], [])
    if name == "PCA10059":
        pkg = str(b / "PCA10059-dfu.zip")
        return ([["nrfutil", "nrf5sdk-tools", "pkg", "generate", "--hw-version", "52", "--sd-req", "0x00",
                  "--application-version", "1", "--application", str(fw), pkg],
                 ["nrfutil", "nrf5sdk-tools", "dfu", "usb-serial", "--package", pkg, "--port", port],
                 ["mpremote", "connect", port, "fs", "cp", "-r", str(b / "fs" / "app.mpy"), str(b / "fs" / "boot.py"),
                  str(b / "fs" / "main.py"), ":"],
                 ["mpremote", "connect", port, "romfs", "deploy", rom]], [])
    if name == "SEEED_XIAO_NRF52":
        return ([["cp", str(b / "SEEED_XIAO_NRF52-image.uf2"), drive + "/"]], [])
    raise AssertionError(f"no expected invocations for {name}: add them here")


@pytest.mark.parametrize("name", board_names())
def test_plan_invocations_for_every_board(built, tmp_path, name):
    board = load_board(name)
    fw = tmp_path / "fw" / board.firmware_name
    ctx = context(built, name, fw, port=PORT, drive="/media/hg/XIAO-SENSE")
    flash_argv, image_argv = expected_argv(name, built[name], fw)
    assert [s.argv for s in hflash.plan_flash(ctx) if s.argv is not None] == flash_argv
    assert [s.argv for s in hflash.plan_image(ctx) if s.argv is not None] == image_argv


@pytest.mark.parametrize("name", board_names())
def test_cli_dry_run_reports_refusals_first_prints_the_plan_and_fails(built, tmp_path, name):
    """Without a firmware file the real run is refused: the dry run says so before the plan, and exits 1."""
    board = load_board(name)
    fw_dir = tmp_path / "fw"
    fw_dir.mkdir()
    drive = uf2_drive(tmp_path)
    before = sorted(p.name for p in built[name].iterdir())
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "flash", "--board", name, "--port", PORT,
                           "--drive", str(drive), "--firmware", str(fw_dir), "--build-dir", str(built[name]),
                           "--dry-run"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    assert proc.returncode == 1, proc.stdout
    lines = proc.stdout.splitlines()
    refusal = lines.index(next(line for line in lines if "would refuse: " in line and "not found" in line))
    plan = [lines.index(shlex.join(argv)) for argv in expected_argv(name, built[name], fw_dir / board.firmware_name,
                                                                    drive=str(drive))[0]]
    assert refusal < min(plan)
    assert "dry run, nothing is written" in proc.stdout and "the real run would refuse" in proc.stdout
    assert sorted(p.name for p in built[name].iterdir()) == before


@pytest.mark.parametrize("name", ["ESP32_GENERIC", "PCA10059"])
def test_dry_run_without_a_port_says_so_and_prints_no_empty_port(built, tmp_path, name):
    if name.startswith("ESP32"):
        fw = fake_firmware(tmp_path / "fw" / "fw.bin")
    else:
        fw = fake_hex(tmp_path / "fw" / "fw.hex", 0x1000)
    boards = pinned_override(tmp_path, name, fw)
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "flash", "--board", name, "--firmware", str(fw),
                           "--build-dir", str(built[name]), "--dry-run"], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PORT": "", "HOURGLASS_BOARDS_DIR": str(boards)})
    assert proc.returncode == 1
    assert "--port ''" not in proc.stdout and "--port '<PORT>'" in proc.stdout
    assert f"would refuse: {name} needs --port (PORT=)" in proc.stderr


def test_dry_run_of_a_run_that_would_go_exits_0(built, tmp_path):
    fw = fake_firmware(tmp_path / "fw" / "fw.bin")
    boards = pinned_override(tmp_path, "ESP32_GENERIC", fw)
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "flash", "--board", "ESP32_GENERIC", "--port", PORT,
                           "--firmware", str(fw), "--build-dir", str(built["ESP32_GENERIC"]), "--dry-run"],
                          capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "HOURGLASS_BOARDS_DIR": str(boards)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert shlex.join(expected_argv("ESP32_GENERIC", built["ESP32_GENERIC"], fw)[0][0]) in proc.stdout


def test_a_serial_port_that_is_not_there_is_refused(built, tmp_path):
    fw = fake_firmware(tmp_path / "fw" / "fw.bin")
    board = load_board("ESP32_GENERIC", pinned_override(tmp_path, "ESP32_GENERIC", fw))
    ctx = context(built, "ESP32_GENERIC", fw, board=board, port="/dev/ttyUSB9")
    assert hflash.refusals(ctx, "flash") == [
        "serial port /dev/ttyUSB9 does not exist (serial ports present: "
        + (", ".join(line.split()[0] for line in serial_ports()) or "none") + ")"]
    ctx.port = PORT
    assert hflash.refusals(ctx, "flash") == []


def test_dry_run_reports_every_refusal_of_the_real_run(built, tmp_path):
    """Unpinned firmware, a missing port and a missing build: all three, then exit 1."""
    board = load_board("ESP32_GENERIC")
    fw = fake_firmware(tmp_path / board.firmware_name)
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "flash", "--board", "ESP32_GENERIC",
                           "--firmware", str(fw), "--build-dir", str(tmp_path / "nobuild"), "--dry-run"],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PORT": ""})
    assert proc.returncode == 1
    refusals = [line for line in proc.stderr.splitlines() if "would refuse: " in line]
    assert len(refusals) == 3, proc.stderr
    assert "needs --port" in refusals[0] and "no sha256 is pinned" in refusals[1] and "fs.img is missing" in refusals[2]
    # The real run refuses with the same reasons, one line each, and runs nothing.
    real = subprocess.run([sys.executable, "-m", "hourglass.cli", "flash", "--board", "ESP32_GENERIC",
                           "--firmware", str(fw), "--build-dir", str(tmp_path / "nobuild")],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PORT": ""})
    assert real.returncode == 1 and real.stdout == ""
    assert [line.split(": ", 1)[1] for line in real.stderr.splitlines()] == \
        [line.split("would refuse: ", 1)[1] for line in refusals]


def test_unpinned_firmware_is_refused_before_anything_runs(built, tmp_path, monkeypatch, capsys):
    board = load_board("ESP32_GENERIC")
    assert board.firmware_sha256 == ""  # the real pin is unknown offline
    fw = fake_firmware(tmp_path / board.firmware_name)
    calls = []
    monkeypatch.setattr(hflash.subprocess, "run", lambda *a, **k: calls.append(a))
    status = cli.main(["flash", "--board", "ESP32_GENERIC", "--port", PORT, "--firmware", str(fw),
                       "--build-dir", str(built["ESP32_GENERIC"])])
    err = capsys.readouterr()
    assert status == 1 and calls == [] and err.out == ""
    assert err.err.startswith("hourglass flash: ESP32_GENERIC: no sha256 is pinned") and err.err.count("\n") == 1
    assert f"hourglass firmware pin {fw} --board ESP32_GENERIC" in err.err


def test_mismatching_firmware_is_refused(built, tmp_path):
    fw = fake_firmware(tmp_path / "fw.bin")
    boards = pinned_override(tmp_path, "ESP32_GENERIC_S3", fw)
    board = load_board("ESP32_GENERIC_S3", boards)
    tampered = tmp_path / "tampered" / "fw.bin"
    tampered.parent.mkdir()
    tampered.write_bytes(fw.read_bytes()[:-1] + b"\x00")
    ctx = context(built, "ESP32_GENERIC_S3", tampered, board=board, port=PORT)
    assert any("refusing to write it" in r for r in hflash.refusals(ctx, "flash"))
    # An explicit --sha256 pin is checked the same way.
    ctx = context(built, "ESP32_GENERIC_S3", tampered, port=PORT, sha256=hashlib.sha256(fw.read_bytes()).hexdigest())
    assert any("refusing to write it" in r for r in hflash.refusals(ctx, "image"))
    ctx = context(built, "ESP32_GENERIC_S3", fw, board=board, port=PORT)
    assert hflash.refusals(ctx, "flash") == []


def test_firmware_comes_from_a_local_file_or_cache(tmp_path, monkeypatch):
    board = load_board("PCA10056")
    monkeypatch.setenv("HOURGLASS_FIRMWARE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(hflash, "DEFAULT_FIRMWARE_CACHE", tmp_path / "home-cache")
    with pytest.raises(UserError, match="Nothing is downloaded"):
        hflash.find_firmware(board)
    cached = fake_firmware(tmp_path / "cache" / board.firmware_name)
    assert hflash.find_firmware(board) == cached
    other = fake_firmware(tmp_path / "elsewhere.hex")
    assert hflash.find_firmware(board, other) == other
    with pytest.raises(UserError, match="does not exist"):
        hflash.find_firmware(board, tmp_path / "missing.hex")


@pytest.mark.parametrize("name", ["ESP32_GENERIC", "ESP32_GENERIC_C3"])
def test_esp32_merged_image(built, tmp_path, name):
    fw = fake_firmware(tmp_path / "fw" / "fw.bin")
    board = load_board(name, pinned_override(tmp_path, name, fw))
    ctx = context(built, name, fw, board=board)
    assert hflash.refusals(ctx, "image") == []
    assert hflash.execute(hflash.plan_image(ctx), dry_run=False) == 0
    image = ctx.image.read_bytes()
    fs = (built[name] / "fs.img").read_bytes()
    off = board.firmware_offset
    assert image[:off] == b"\xff" * off
    assert image[off:off + len(fw.read_bytes())] == fw.read_bytes()
    assert image[board.fs_offset:board.fs_offset + board.fs_size] == fs
    assert len(image) == board.fs_offset + board.fs_size == board.flash_size
    ctx.image.unlink()


def uf2_memory(data: bytes, family: int) -> dict[int, int]:
    """Check every block against the UF2 spec and return the flash contents it describes."""
    assert len(data) % 512 == 0
    total = len(data) // 512
    memory: dict[int, int] = {}
    for n in range(total):
        block = data[n * 512:(n + 1) * 512]
        m0, m1, flags, addr, size, block_no, num_blocks, fam = struct.unpack_from("<8I", block)
        assert (m0, m1) == (0x0A324655, 0x9E5D5157)
        assert struct.unpack_from("<I", block, 508)[0] == 0x0AB16F30
        assert flags == 0x2000 and fam == family
        assert (block_no, num_blocks) == (n, total)
        assert size == 256 and addr % 256 == 0
        assert block[32 + size:508] == bytes(476 - size)
        for i, byte in enumerate(block[32:32 + size]):
            assert addr + i not in memory
            memory[addr + i] = byte
    return memory


def test_xiao_uf2_image_holds_firmware_filesystem_and_romfs(built, tmp_path):
    name = "SEEED_XIAO_NRF52"
    base = load_board(name)
    app = fake_firmware(tmp_path / "app.raw", 100_000)
    fw = tmp_path / "fw" / "fw.uf2"
    fw.parent.mkdir()
    fw.write_bytes(hflash.uf2_blocks([(base.firmware_offset, app.read_bytes())], 0xADA52840))
    board = load_board(name, pinned_override(tmp_path, name, fw))
    drive = uf2_drive(tmp_path)
    ctx = context(built, name, fw, board=board, drive=str(drive))
    assert hflash.refusals(ctx, "flash") == []
    assert hflash.execute(hflash.plan_flash(ctx), dry_run=False) == 0
    copied = (drive / ctx.image.name).read_bytes()
    assert copied == ctx.image.read_bytes()
    memory = uf2_memory(copied, 0xADA52840)
    fs = (built[name] / "fs.img").read_bytes()
    romfs = (built[name] / "romfs.img").read_bytes()
    expected = {base.firmware_offset + i: b for i, b in enumerate(app.read_bytes())}
    expected.update({board.fs_offset + i: b for i, b in enumerate(fs)})
    expected.update({0x74000 + i: b for i, b in enumerate(romfs)})
    # The last partial 256-byte blocks of the firmware and of romfs.img are padded with erased-flash bytes.
    padding = {a: v for a, v in memory.items() if a not in expected}
    ends = (base.firmware_offset + len(app.read_bytes()), 0x74000 + len(romfs))
    assert set(padding) == {a for end in ends for a in range(end, (end + 255) // 256 * 256)}
    assert set(padding.values()) <= {0xFF}
    assert {a: v for a, v in memory.items() if a in expected} == expected
    # The UF2 reader round-trips what the writer wrote.
    chunks = hflash.parse_uf2(copied, 0xADA52840)
    assert {a + i: v for a, c in chunks for i, v in enumerate(c)} == memory


@pytest.mark.parametrize("make_drive,complaint", [
    (lambda d: d.mkdir(), "is not a UF2 bootloader drive (it has no INFO_UF2.TXT)"),
    (lambda d: None, "is not a mounted folder"),
])
def test_drive_must_be_a_uf2_bootloader_drive(built, tmp_path, make_drive, complaint):
    drive = tmp_path / "usbstick"
    make_drive(drive)
    ctx = context(built, "SEEED_XIAO_NRF52", tmp_path / "fw.uf2", drive=str(drive))
    assert any(complaint in r for r in hflash.refusals(ctx, "flash"))
    ctx.drive = str(uf2_drive(tmp_path))
    assert not any("drive" in r for r in hflash.refusals(ctx, "flash"))


def test_uf2_reader_rejects_bad_blocks():
    good = hflash.uf2_blocks([(0x27000, bytes(range(256)) * 2)], 0xADA52840)
    with pytest.raises(UserError, match="malformed"):
        hflash.parse_uf2(good[:4] + b"\x00" + good[5:])
    with pytest.raises(UserError, match="family"):
        hflash.parse_uf2(good, 0xE48BFF56)
    with pytest.raises(UserError, match="multiple of 512"):
        hflash.parse_uf2(good[:-1])


def pyocd_load_memory(argv: list[str]) -> dict[int, int]:
    """What `pyocd load` would write for this argv: its own argument parser, base-address suffix handling and
    FileProgrammer format handlers, with the flash loader replaced by a recorder (no probe, no target)."""
    from pyocd.__main__ import PyOCDTool
    from pyocd.flash.file_programmer import FileProgrammer
    from pyocd.target.builtin.target_nRF52840_xxAA import NRF52840

    assert argv[:2] == ["pyocd", "load"]
    args = PyOCDTool().build_parser().parse_args(argv[1:])
    assert args.no_wait and args.target_override == "nrf52840" and args.erase == "chip"

    class Recorder:
        def __init__(self):
            self.memory: dict[int, int] = {}

        def add_data(self, address, data):
            region = NRF52840.MEMORY_MAP.get_region_for_address(address)
            assert region is not None and region.is_flash
            assert NRF52840.MEMORY_MAP.get_region_for_address(address + len(data) - 1) is region
            for i, byte in enumerate(data):
                self.memory[address + i] = byte

    programmer = FileProgrammer.__new__(FileProgrammer)
    recorder = Recorder()
    programmer._loader = recorder
    programmer._format_handlers = {"bin": programmer._program_bin, "hex": programmer._program_hex,
                                   "elf": programmer._program_elf, "axf": programmer._program_elf}
    for filename in args.file:
        base_address = None
        if "@" in filename and not Path(filename).exists():  # pyOCD's own rule (subcommands/load_cmd.py)
            filename, suffix = filename.rsplit("@", 1)
            base_address = int(suffix, 0)
        programmer.add_file(filename, file_format=args.format, base_address=base_address, skip=args.skip)
    return recorder.memory


def test_pca10056_flash_is_one_hex_that_pyocd_loads(built, tmp_path):
    """pyOCD picks the format from the extension and has no format for `.img`: the filesystem and ROMFS go into
    the Intel HEX image at their addresses, which pyOCD's loader reads back byte for byte."""
    from pyocd.flash.file_programmer import FileProgrammer

    fw = fake_hex(tmp_path / "fw" / "fw.hex", 0x0)
    board = load_board("PCA10056", pinned_override(tmp_path, "PCA10056", fw))
    ctx = context(built, "PCA10056", fw, board=board)
    assert hflash.refusals(ctx, "flash") == []
    steps = hflash.plan_flash(ctx)
    image_step, probe_step, load = steps
    assert "Intel HEX" in image_step.what and "romfs.img at 0xb0000" in image_step.what
    assert "debug probe" in probe_step.what
    image_step.run()
    memory = pyocd_load_memory(load.argv)
    fs = (built["PCA10056"] / "fs.img").read_bytes()
    romfs = (built["PCA10056"] / "romfs.img").read_bytes()
    firmware = (tmp_path / "fw" / "fw.raw").read_bytes()
    expected = {i: b for i, b in enumerate(firmware)}
    expected.update({0xF0000 + i: b for i, b in enumerate(fs)})
    expected.update({0xB0000 + i: b for i, b in enumerate(romfs)})
    assert memory == expected
    # The command this replaces: pyOCD refuses the raw filesystem image whatever its address.
    programmer = FileProgrammer.__new__(FileProgrammer)
    programmer._format_handlers = {"hex": None, "bin": None, "elf": None, "axf": None}
    with pytest.raises(ValueError, match="unknown file format 'img'"):
        programmer.add_file(str(built["PCA10056"] / "fs.img"), base_address=0xF0000)
    ctx.image.unlink()


def test_probe_wait_times_out_without_a_probe():
    """No probe on this machine: the wait gives up with a clear message instead of hanging as pyOCD would."""
    start = time.monotonic()
    with pytest.raises(UserError, match="no debug probe found within 1 s"):
        hflash.wait_for_probe(1.0)
    assert time.monotonic() - start < 30


def test_pyocd_itself_does_not_wait_for_a_probe(built, tmp_path):
    """The exact pyOCD command returns at once when no probe is there (--no-wait), instead of waiting forever."""
    fw = fake_hex(tmp_path / "fw" / "fw.hex", 0x0)
    board = load_board("PCA10056", pinned_override(tmp_path, "PCA10056", fw))
    ctx = context(built, "PCA10056", fw, board=board)
    steps = hflash.plan_flash(ctx)
    steps[0].run()
    argv = steps[-1].argv
    proc = subprocess.run([str(Path(sys.executable).parent / "pyocd"), *argv[1:]], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and "No target device available" in proc.stdout + proc.stderr
    ctx.image.unlink()


def test_firmware_overlapping_the_filesystem_is_refused(built, tmp_path):
    fw = fake_hex(tmp_path / "fw" / "big.hex", 0xE0000, size=0x11000)  # runs into the fs at 0xf0000
    board = load_board("PCA10056", pinned_override(tmp_path, "PCA10056", fw))
    ctx = context(built, "PCA10056", fw, board=board)
    # It also runs through the ROMFS at 0xb0000..0xf0000: the first region it hits is reported.
    assert any("inside the filesystem region 0xf0000" in r or "inside the ROMFS region 0xb0000" in r
               for r in hflash.refusals(ctx, "flash"))


def test_stock_sized_esp32_firmware_fits_and_more_is_refused():
    """The default table's factory partition is 0x1F0000 at 0x10000: a firmware .bin written at 0x1000 may fill
    up to 0x200000, where vfs starts."""
    board = load_board("ESP32_GENERIC")
    hflash.check_firmware_layout(board, [(0x1000, bytes(0x200000 - 0x1000))])
    with pytest.raises(UserError, match="inside the filesystem region 0x200000"):
        hflash.check_firmware_layout(board, [(0x1000, bytes(0x200000 - 0x1000 + 16))])


def test_firmware_reaching_into_the_romfs_partition_is_refused():
    board = load_board("PCA10056")
    with pytest.raises(UserError, match="inside the ROMFS region 0xb0000"):
        hflash.check_firmware_layout(board, [(0, bytes(0xB0000 + 16))])
    hflash.check_firmware_layout(board, [(0, bytes(0xB0000))])


def test_flash_uses_the_flash_size_the_build_was_made_for(tmp_path):
    lib, fw_dir = tmp_path / "lib", tmp_path / "firmware"
    lib.mkdir()
    fw_dir.mkdir()
    (fw_dir / "main.py").write_text("# main\n")
    out = tmp_path / "b8"
    hbuild.build(load_board("ESP32_GENERIC_S3", flash_size=8 << 20), out, lib, fw_dir)
    fw = fake_firmware(tmp_path / "fw" / "fw.bin")
    boards = pinned_override(tmp_path, "ESP32_GENERIC_S3", fw)
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "image", "--board", "ESP32_GENERIC_S3",
                           "--firmware", str(fw), "--build-dir", str(out)], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "HOURGLASS_BOARDS_DIR": str(boards)})
    assert proc.returncode == 0, proc.stderr
    assert "(1536 blocks, flash 0x800000)" in proc.stdout
    assert (out / "ESP32_GENERIC_S3-image.bin").stat().st_size == 8 << 20


def test_empty_filesystem_tree_skips_the_copy_step(tmp_path):
    board = load_board("PCA10059")
    (tmp_path / "fs").mkdir()
    ctx = hflash.Context(board, BuildLayout("PCA10059", tmp_path), tmp_path / board.firmware_name, port=PORT)
    tools = [s.argv[:4] for s in hflash.plan_flash(ctx) if s.argv]
    assert ["mpremote", "connect", PORT, "fs"] not in tools
    assert ["mpremote", "connect", PORT, "romfs"] in tools


def test_a_command_line_pin_cannot_override_the_board_pin(tmp_path):
    fw = fake_firmware(tmp_path / "fw.bin")
    board = load_board("ESP32_GENERIC", pinned_override(tmp_path, "ESP32_GENERIC", fw))
    other = fake_firmware(tmp_path / "other.bin", seed=2)
    with pytest.raises(UserError, match="conflicts with the sha256 pinned"):
        hflash.verify_firmware(board, other, hashlib.sha256(other.read_bytes()).hexdigest())
    assert hflash.verify_firmware(board, fw) == hashlib.sha256(fw.read_bytes()).hexdigest()


def test_make_targets_pass_their_variables():
    out = subprocess.run(["make", "-n", "flash", "BOARD=PCA10059", "PORT=/dev/ttyACM0", "DRIVE=/media/d",
                          "FIRMWARE=/fw/x.hex", "SHA256=" + "ab" * 32, "FLASH_SIZE=8M", "DRY_RUN=1"],
                         capture_output=True, text=True, cwd=REPO).stdout
    assert ".venv/bin/hourglass build --board PCA10059 --flash-size 8M" in out
    assert (".venv/bin/hourglass flash --board PCA10059 --port /dev/ttyACM0 --drive /media/d --firmware /fw/x.hex "
            f"--sha256 {'ab' * 32} --dry-run") in out
    out = subprocess.run(["make", "-n", "image", "BOARD=ESP32_GENERIC_S3"], capture_output=True, text=True,
                         cwd=REPO).stdout
    assert ".venv/bin/hourglass image --board ESP32_GENERIC_S3" in out


def test_cli_image_with_a_pinned_override_and_refusal_without(built, tmp_path):
    fw = fake_firmware(tmp_path / "fw" / "fw.bin")
    boards = pinned_override(tmp_path, "ESP32_GENERIC_C3", fw)
    build_dir = tmp_path / "b"
    shutil.copytree(built["ESP32_GENERIC_C3"], build_dir)
    cmd = [sys.executable, "-m", "hourglass.cli", "image", "--board", "ESP32_GENERIC_C3", "--firmware", str(fw),
           "--build-dir", str(build_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1 and "no sha256 is pinned" in proc.stderr
    assert not (build_dir / "ESP32_GENERIC_C3-image.bin").exists()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "HOURGLASS_BOARDS_DIR": str(boards)})
    assert proc.returncode == 0, proc.stderr
    image = build_dir / "ESP32_GENERIC_C3-image.bin"
    assert image.read_bytes()[:len(fw.read_bytes())] == fw.read_bytes()
    assert f"write-flash 0x0 {image}" in proc.stdout


# ---------------------------------------------------------------------------------------------- firmware pin

def board_copy(tmp_path: Path, name: str) -> Path:
    boards = tmp_path / "boards"
    shutil.copytree(BOARDS_DIR / name, boards / name)
    return boards


def test_firmware_pin_writes_name_and_sha256_into_board_toml(built, tmp_path):
    boards = board_copy(tmp_path, "ESP32_GENERIC")
    fw = fake_firmware(tmp_path / "dl" / "ESP32_GENERIC-20260901-v1.29.0.bin", 1_600_000)
    env = {**os.environ, "HOURGLASS_BOARDS_DIR": str(boards)}
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "firmware", "pin", str(fw), "--board",
                           "ESP32_GENERIC"], capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr
    digest = hashlib.sha256(fw.read_bytes()).hexdigest()
    pinned = load_board("ESP32_GENERIC", boards)
    assert (pinned.firmware_name, pinned.firmware_sha256) == (fw.name, digest)
    text = (boards / "ESP32_GENERIC" / "board.toml").read_text()
    assert "Not pinned" not in text and f"from {fw.name} (1600000 bytes)" in text
    # Everything else in board.toml is as it was.
    original = (BOARDS_DIR / "ESP32_GENERIC" / "board.toml").read_text()
    assert text[text.index("[flash]"):] == original[original.index("[flash]"):]
    # The pinned file now passes the flasher's checks (found in its folder under its published name).
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "flash", "--board", "ESP32_GENERIC", "--port", PORT,
                           "--firmware", str(fw.parent), "--build-dir", str(built["ESP32_GENERIC"]), "--dry-run"],
                          capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name,file,size,complaint", [
    ("ESP32_GENERIC", "firmware.bin", 100_000, "is not a MicroPython 1.29.0 firmware file for ESP32_GENERIC"),
    ("ESP32_GENERIC", "ESP32_GENERIC-20260901-v1.28.0.bin", 100_000, "not a MicroPython 1.29.0 firmware file"),
    ("ESP32_GENERIC", "ESP32_GENERIC_C3-20260901-v1.29.0.bin", 100_000, "not a MicroPython 1.29.0 firmware"),
    ("ESP32_GENERIC", "ESP32_GENERIC-20260901-v1.29.0.bin", 0x200000, "inside the filesystem region 0x200000"),
    ("PCA10056", "PCA10056-20260901-v1.29.0.hex", 0xB0010, "inside the ROMFS region 0xb0000"),
])
def test_firmware_pin_checks_name_and_size_against_the_board(tmp_path, name, file, size, complaint):
    boards = board_copy(tmp_path, name)
    fw = (fake_hex(tmp_path / file, 0, size) if file.endswith(".hex") else fake_firmware(tmp_path / file, size))
    before = (boards / name / "board.toml").read_text()
    with pytest.raises(UserError, match=complaint):
        hflash.pin_firmware(load_board(name, boards), fw)
    assert (boards / name / "board.toml").read_text() == before


def test_firmware_pin_refuses_a_file_that_is_not_an_esp32_image(tmp_path):
    boards = board_copy(tmp_path, "ESP32_GENERIC")
    fw = tmp_path / "ESP32_GENERIC-20260901-v1.29.0.bin"
    fw.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(UserError, match="not an ESP32 firmware .bin"):
        hflash.pin_firmware(load_board("ESP32_GENERIC", boards), fw)


# ---------------------------------------------------------------------------------------------- one-line errors

@pytest.fixture(scope="module")
def ready(tmp_path_factory):
    """A pinned ESP32_GENERIC (test copy), its firmware and a build folder: a flash run that would go."""
    tmp = tmp_path_factory.mktemp("ready")
    fw = fake_firmware(tmp / "fw" / "fw.bin")
    boards = pinned_override(tmp, "ESP32_GENERIC", fw)
    build_dir = tmp / "b"
    build_dir.mkdir()
    (build_dir / "fs.img").write_bytes(bytes(0x200000))
    return boards, fw, build_dir


@pytest.mark.parametrize("argv,message", [
    (["flash", "--board", "NO_SUCH_BOARD", "--port", PORT], "hourglass flash: unknown board 'NO_SUCH_BOARD'"),
    (["image", "--board", "NO_SUCH_BOARD"], "hourglass image: unknown board 'NO_SUCH_BOARD'"),
    (["firmware", "pin", "x.bin", "--board", "NO_SUCH_BOARD"], "hourglass firmware: unknown board 'NO_SUCH_BOARD'"),
    (["flash", "--board", "ESP32_GENERIC"], "hourglass flash: ESP32_GENERIC needs --port (PORT=)"),
    (["flash", "--board", "ESP32_GENERIC", "--port", PORT, "--firmware", "/nonexistent/fw.bin"],
     "hourglass flash: firmware file /nonexistent/fw.bin does not exist"),
    (["image", "--board", "ESP32_GENERIC", "--firmware", "/nonexistent/fw.bin"],
     "hourglass image: firmware file /nonexistent/fw.bin does not exist"),
    (["firmware", "pin", "/nonexistent/fw.bin", "--board", "ESP32_GENERIC"],
     "hourglass firmware: firmware file /nonexistent/fw.bin does not exist"),
    (["flash"], "hourglass flash: give --board NAME"),
    (["flash", "--board", "ESP32_GENERIC", "--port", PORT, "--firmware", "{notfirmware}"],
     "hourglass flash: ESP32_GENERIC: notes.txt is not a .bin file"),
])
def test_cli_user_errors_are_one_line_and_exit_1(ready, tmp_path, argv, message):
    """The one refusal a user meets alone: every other precondition holds (pinned firmware, a build)."""
    boards, fw, build_dir = ready
    notes = tmp_path / "notes.txt"
    notes.write_text("not firmware")
    argv = [a.replace("{notfirmware}", str(notes)) for a in argv]
    if argv[0] in ("flash", "image") and len(argv) > 2:
        argv += ["--build-dir", str(build_dir)] + ([] if "--firmware" in argv else ["--firmware", str(fw)])
    env = {k: v for k, v in os.environ.items() if k not in ("BOARD", "PORT", "DRIVE")}
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", *argv], capture_output=True, text=True,
                          cwd=REPO, env={**env, "HOURGLASS_BOARDS_DIR": str(boards)})
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
