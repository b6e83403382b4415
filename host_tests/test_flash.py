"""`hourglass flash` / `hourglass image`: exact tool invocations per board, the firmware sha256 pin, the layout
check, esptool merge-bin images, and UF2 (family 0xADA52840) images checked block by block against the spec.

The firmware here is a fake file of random bytes; its sha256 is pinned in a test-only copy of the board folder
(HOURGLASS_BOARDS_DIR), never in boards/ itself.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from hourglass import build as hbuild
from hourglass import flash as hflash
from hourglass.boards import BOARDS_DIR, REPO, board_names, load_board

PORT = "/dev/ttyUSB0"
DRIVE = "/media/hg/XIAO-SENSE"


def fake_firmware(path: Path, size: int = 200_000, seed: int = 1) -> Path:
    import random

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(seed).randbytes(size))
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


def expected_argv(name: str, b: Path, fw: Path) -> tuple[list[list[str]], list[list[str]]]:
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
        return ([["esptool", "--chip", chip, "--port", PORT, "--baud", "460800", "write-flash", *extra,
                  fw_off, str(fw), fs_off, fs]],
                [["esptool", "--chip", chip, "merge-bin", "--output", str(b / f"{name}-image.bin"),
                  fw_off, str(fw), fs_off, fs]])
    if name == "PCA10056":
        return ([["pyocd", "load", "--target", "nrf52840", "--erase", "chip", str(fw), f"{fs}@0xf0000"],
                 ["mpremote", "connect", PORT, "romfs", "deploy", rom]], [])
    if name == "PCA10059":
        pkg = str(b / "PCA10059-dfu.zip")
        return ([["nrfutil", "nrf5sdk-tools", "pkg", "generate", "--hw-version", "52", "--sd-req", "0x00",
                  "--application-version", "1", "--application", str(fw), pkg],
                 ["nrfutil", "nrf5sdk-tools", "dfu", "usb-serial", "--package", pkg, "--port", PORT],
                 ["mpremote", "connect", PORT, "fs", "cp", "-r", str(b / "fs" / "app.mpy"), str(b / "fs" / "boot.py"),
                  str(b / "fs" / "main.py"), ":"],
                 ["mpremote", "connect", PORT, "romfs", "deploy", rom]], [])
    if name == "SEEED_XIAO_NRF52":
        return ([["cp", str(b / "SEEED_XIAO_NRF52-image.uf2"), DRIVE + "/"],
                 ["mpremote", "connect", PORT, "romfs", "deploy", rom]], [])
    raise AssertionError(f"no expected invocations for {name}: add them here")


@pytest.mark.parametrize("name", board_names())
def test_dry_run_invocations_for_every_board(built, tmp_path, name):
    board = load_board(name)
    fw = tmp_path / "fw" / board.firmware_name
    ctx = hflash.Context(board, built[name], fw, port=PORT, drive=DRIVE)
    flash_argv, image_argv = expected_argv(name, built[name], fw)
    assert [s.argv for s in hflash.plan_flash(ctx) if s.argv is not None] == flash_argv
    assert [s.argv for s in hflash.plan_image(ctx) if s.argv is not None] == image_argv
    # Every plan starts by verifying the firmware, before any tool runs.
    assert hflash.plan_flash(ctx)[0].argv is None and "verify sha256" in hflash.plan_flash(ctx)[0].what


@pytest.mark.parametrize("name", board_names())
def test_cli_dry_run_prints_the_invocations_and_writes_nothing(built, tmp_path, name):
    board = load_board(name)
    fw_dir = tmp_path / "fw"
    fw_dir.mkdir()  # an empty firmware folder: a dry run still shows where the file would come from
    fw = fw_dir / board.firmware_name
    before = sorted(p.name for p in built[name].iterdir())
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "flash", "--board", name, "--port", PORT,
                           "--drive", DRIVE, "--firmware", str(fw_dir), "--build-dir", str(built[name]),
                           "--dry-run"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    import shlex

    for argv in expected_argv(name, built[name], fw)[0]:
        assert shlex.join(argv) in proc.stdout.splitlines()
    assert "dry run, nothing is written" in proc.stdout
    assert sorted(p.name for p in built[name].iterdir()) == before


def test_unpinned_firmware_is_refused_before_anything_runs(built, tmp_path, monkeypatch):
    board = load_board("ESP32_GENERIC")
    assert board.firmware_sha256 == ""  # the real pin is unknown offline
    fw = fake_firmware(tmp_path / board.firmware_name)
    calls = []
    monkeypatch.setattr(hflash.subprocess, "run", lambda *a, **k: calls.append(a))
    ctx = hflash.Context(board, built["ESP32_GENERIC"], fw, port=PORT)
    with pytest.raises(hflash.FlashError, match="no sha256 is pinned"):
        hflash.execute(hflash.plan_flash(ctx), dry_run=False)
    assert calls == []


def test_mismatching_firmware_is_refused(built, tmp_path, monkeypatch):
    fw = fake_firmware(tmp_path / "fw.bin")
    boards = pinned_override(tmp_path, "ESP32_GENERIC_S3", fw)
    board = load_board("ESP32_GENERIC_S3", boards)
    tampered = tmp_path / "tampered" / "fw.bin"
    tampered.parent.mkdir()
    tampered.write_bytes(fw.read_bytes()[:-1] + b"\x00")
    calls = []
    monkeypatch.setattr(hflash.subprocess, "run", lambda *a, **k: calls.append(a))
    ctx = hflash.Context(board, built["ESP32_GENERIC_S3"], tampered, port=PORT)
    with pytest.raises(hflash.FlashError, match="refusing to write it"):
        hflash.execute(hflash.plan_flash(ctx), dry_run=False)
    # An explicit --sha256 pin is checked the same way.
    ctx = hflash.Context(load_board("ESP32_GENERIC_S3"), built["ESP32_GENERIC_S3"], tampered, port=PORT,
                         sha256=hashlib.sha256(fw.read_bytes()).hexdigest())
    with pytest.raises(hflash.FlashError, match="refusing to write it"):
        hflash.execute(hflash.plan_image(ctx), dry_run=False)
    assert calls == []


def test_firmware_comes_from_a_local_file_or_cache(tmp_path, monkeypatch):
    board = load_board("PCA10056")
    monkeypatch.setenv("HOURGLASS_FIRMWARE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(hflash, "DEFAULT_FIRMWARE_CACHE", tmp_path / "home-cache")
    with pytest.raises(hflash.FlashError, match="Nothing is downloaded"):
        hflash.find_firmware(board)
    cached = fake_firmware(tmp_path / "cache" / board.firmware_name)
    assert hflash.find_firmware(board) == cached
    other = fake_firmware(tmp_path / "elsewhere.hex")
    assert hflash.find_firmware(board, other) == other
    with pytest.raises(hflash.FlashError, match="does not exist"):
        hflash.find_firmware(board, tmp_path / "missing.hex")


@pytest.mark.parametrize("name", ["ESP32_GENERIC", "ESP32_GENERIC_C3"])
def test_esp32_merged_image(built, tmp_path, name):
    fw = fake_firmware(tmp_path / "fw" / "fw.bin")
    board = load_board(name, pinned_override(tmp_path, name, fw))
    ctx = hflash.Context(board, built[name], fw)
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


def test_xiao_uf2_image_holds_firmware_and_filesystem(built, tmp_path):
    name = "SEEED_XIAO_NRF52"
    base = load_board(name)
    app = fake_firmware(tmp_path / "app.bin", 100_000)
    fw = tmp_path / "fw" / "fw.uf2"
    fw.parent.mkdir()
    fw.write_bytes(hflash.uf2_blocks([(base.firmware_offset, app.read_bytes())], 0xADA52840))
    board = load_board(name, pinned_override(tmp_path, name, fw))
    drive = tmp_path / "drive"
    drive.mkdir()
    ctx = hflash.Context(board, built[name], fw, port=PORT, drive=str(drive))
    steps = hflash.plan_flash(ctx)
    # Run everything up to and including the copy onto the drive (the ROMFS step needs a board).
    copy = next(i for i, s in enumerate(steps) if s.argv and s.argv[0] == "cp")
    assert hflash.execute(steps[:copy + 1], dry_run=False) == 0
    copied = (drive / ctx.image.name).read_bytes()
    assert copied == ctx.image.read_bytes()
    memory = uf2_memory(copied, 0xADA52840)
    fs = (built[name] / "fs.img").read_bytes()
    expected = {base.firmware_offset + i: b for i, b in enumerate(app.read_bytes())}
    expected.update({board.fs_offset + i: b for i, b in enumerate(fs)})
    # The firmware's last partial 256-byte block is padded with erased-flash bytes.
    padding = {a: v for a, v in memory.items() if a not in expected}
    end = base.firmware_offset + len(app.read_bytes())
    assert set(padding) == set(range(end, (end + 255) // 256 * 256)) and set(padding.values()) <= {0xFF}
    assert {a: v for a, v in memory.items() if a in expected} == expected
    # The UF2 reader round-trips what the writer wrote.
    chunks = hflash.parse_uf2(copied, 0xADA52840)
    assert {a + i: v for a, c in chunks for i, v in enumerate(c)} == memory


def test_uf2_reader_rejects_bad_blocks():
    good = hflash.uf2_blocks([(0x27000, bytes(range(256)) * 2)], 0xADA52840)
    with pytest.raises(hflash.FlashError, match="malformed"):
        hflash.parse_uf2(good[:4] + b"\x00" + good[5:])
    with pytest.raises(hflash.FlashError, match="family"):
        hflash.parse_uf2(good, 0xE48BFF56)
    with pytest.raises(hflash.FlashError, match="multiple of 512"):
        hflash.parse_uf2(good[:-1])


def test_pca10056_merged_hex(built, tmp_path):
    from intelhex import IntelHex

    fw = fake_hex(tmp_path / "fw" / "fw.hex", 0x0)
    board = load_board("PCA10056", pinned_override(tmp_path, "PCA10056", fw))
    ctx = hflash.Context(board, built["PCA10056"], fw)
    assert hflash.execute(hflash.plan_image(ctx), dry_run=False) == 0
    merged = IntelHex(str(ctx.image))
    fs = (built["PCA10056"] / "fs.img").read_bytes()
    assert merged.tobinstr(start=0xF0000, size=len(fs)) == fs
    assert merged.tobinstr(start=0, size=60_000) == (tmp_path / "fw" / "fw.raw").read_bytes()
    ctx.image.unlink()


def test_firmware_overlapping_the_filesystem_is_refused(built, tmp_path, monkeypatch):
    fw = fake_hex(tmp_path / "fw" / "big.hex", 0xE0000, size=0x11000)  # runs into the fs at 0xf0000
    board = load_board("PCA10056", pinned_override(tmp_path, "PCA10056", fw))
    calls = []
    monkeypatch.setattr(hflash.subprocess, "run", lambda *a, **k: calls.append(a))
    ctx = hflash.Context(board, built["PCA10056"], fw, port=PORT)
    with pytest.raises(hflash.FlashError, match="inside the filesystem region 0xf0000"):
        hflash.execute(hflash.plan_flash(ctx), dry_run=False)
    assert calls == []


def test_flash_needs_a_port(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "flash", "--board", "ESP32_GENERIC"],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PORT": ""})
    assert proc.returncode == 2 and "needs --port" in proc.stderr


def test_empty_filesystem_tree_skips_the_copy_step(tmp_path):
    board = load_board("PCA10059")
    (tmp_path / "fs").mkdir()
    ctx = hflash.Context(board, tmp_path, tmp_path / board.firmware_name, port=PORT)
    tools = [s.argv[:4] for s in hflash.plan_flash(ctx) if s.argv]
    assert ["mpremote", "connect", PORT, "fs"] not in tools
    assert ["mpremote", "connect", PORT, "romfs"] in tools


def test_a_command_line_pin_cannot_override_the_board_pin(tmp_path):
    fw = fake_firmware(tmp_path / "fw.bin")
    board = load_board("ESP32_GENERIC", pinned_override(tmp_path, "ESP32_GENERIC", fw))
    other = fake_firmware(tmp_path / "other.bin", seed=2)
    with pytest.raises(hflash.FlashError, match="conflicts with the sha256 pinned"):
        hflash.verify_firmware(board, other, hashlib.sha256(other.read_bytes()).hexdigest())
    assert hflash.verify_firmware(board, fw) == hashlib.sha256(fw.read_bytes()).hexdigest()


def test_firmware_reaching_into_the_romfs_partition_is_refused(tmp_path):
    board = load_board("ESP32_GENERIC")
    too_big = [(0x1000, bytes(0x1E0000 - 0x1000 + 16))]  # app runs 16 bytes into ROMFS at 0x1e0000
    with pytest.raises(hflash.FlashError, match="inside the ROMFS region 0x1e0000"):
        hflash.check_firmware_layout(board, too_big)
    hflash.check_firmware_layout(board, [(0x1000, bytes(0x1E0000 - 0x1000))])


def test_make_targets_pass_their_variables():
    out = subprocess.run(["make", "-n", "flash", "BOARD=PCA10059", "PORT=/dev/ttyACM0", "DRIVE=/media/d",
                          "FIRMWARE=/fw/x.hex", "DRY_RUN=1"], capture_output=True, text=True, cwd=REPO).stdout
    assert ".venv/bin/hourglass build --board PCA10059" in out
    assert (".venv/bin/hourglass flash --board PCA10059 --port /dev/ttyACM0 --drive /media/d --firmware /fw/x.hex "
            "--dry-run") in out
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
