"""`hourglass build`: .mpy per board arch, LittleFS2 image mounted back on the MicroPython VM with the board's
geometry, ROMFS image mounted with VfsRom, freeze manifest, size report and budget, excludes, reproducibility."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hourglass import build as hbuild
from hourglass import mpvm
from hourglass.boards import BOARDS_DIR, REPO, board_names, load_board
from hourglass.common import UserError

# The arch field of an .mpy header (byte 2 >> 2) once the module has native code.
ARCH_CODE = {"xtensawin": 10, "rv32imc": 11, "armv7emsp": 7}

# Runs on the MicroPython VM: mount an image file with the given geometry and print what is on it.
MOUNT_LFS = r"""
import sys, os, vfs
path, bs, count, probe = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

class FileBlockDev:
    def __init__(self, path, block_size, block_count):
        self.f = open(path, "r+b")
        self.bs = block_size
        self.count = block_count
    def readblocks(self, n, buf, off=0):
        self.f.seek(n * self.bs + off)
        self.f.readinto(buf)
    def writeblocks(self, n, buf, off=None):
        self.f.seek(n * self.bs + (off or 0))
        self.f.write(buf)
    def ioctl(self, op, arg):
        if op == 4:
            return self.count
        if op == 5:
            return self.bs
        if op in (1, 2, 3, 6):
            return 0

vfs.mount(vfs.VfsLfs2(FileBlockDev(path, bs, count), readsize=32, progsize=32, lookahead=32), "/m")
st = os.statvfs("/m")
print("GEOMETRY", st[0], st[2])

def walk(d):
    for name, kind, *_ in sorted(os.ilistdir(d)):
        p = d + "/" + name
        if kind == 0x4000:
            walk(p)
        else:
            print("FILE", p[3:], os.stat(p)[6])
walk("/m")
with open("/m/" + probe, "rb") as f:
    data = f.read()
print("PROBE", len(data), sum(data) & 0xFFFFFFFF)
# The board keeps writing to the filesystem it booted with.
with open("/m/written_on_vm.txt", "w") as f:
    f.write("x" * 5000)
vfs.umount("/m")
vfs.mount(vfs.VfsLfs2(FileBlockDev(path, bs, count)), "/m")
print("WRITTEN", os.stat("/m/written_on_vm.txt")[6])
"""

MOUNT_ROMFS = r"""
import sys, os, vfs
with open(sys.argv[1], "rb") as f:
    image = f.read()
vfs.mount(vfs.VfsRom(image), "/rom")
def walk(d):
    for name, kind, *_ in sorted(os.ilistdir(d)):
        p = d + "/" + name
        if kind == 0x4000:
            walk(p)
        else:
            print("FILE", p[5:], os.stat(p)[6])
walk("/rom")
sys.path.insert(0, "/rom/lib")
import cbor
print("IMPORTED", cbor.__name__)
"""


def tree_listing(tree: Path) -> dict[str, int]:
    return {p.relative_to(tree).as_posix(): p.stat().st_size for p in sorted(tree.rglob("*")) if p.is_file()}


def digests(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def make_sources(root: Path) -> tuple[Path, Path]:
    """A small lib/ + firmware/ of our own, so the tests do not depend on what lib/ holds today."""
    lib, fw = root / "lib", root / "firmware"
    (lib / "net" / "net").mkdir(parents=True)
    (lib / "net" / "manifest.py").write_text('metadata(version="0.1")\npackage("net")\n')
    (lib / "net" / "package.json").write_text("{}")
    (lib / "net" / "net" / "__init__.py").write_text("VERSION = 1\n")
    (lib / "net" / "net" / "core.py").write_text("def double(x):\n    return 2 * x\n")
    (lib / "net" / "net" / "dtls.py").write_text("import ssl\nPROTO = ssl.PROTOCOL_DTLS_CLIENT\n")
    (lib / "fast").mkdir()
    (lib / "fast" / "manifest.py").write_text('module("fast.py")\n')
    (lib / "fast" / "fast.py").write_text(
        "try:\n    import micropython\nexcept ImportError:\n    class micropython:\n"
        "        native = staticmethod(lambda f: f)\n\n\n@micropython.native\ndef add(a, b):\n"
        "    return a + b\n")
    fw.mkdir()
    (fw / "boot.py").write_text("# boot\n")
    (fw / "main.py").write_text("import app\napp.run()\n")
    (fw / "app.py").write_text("def run():\n    print('app')\n")
    return lib, fw


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return make_sources(tmp_path_factory.mktemp("src"))


@pytest.mark.parametrize("name", board_names())
def test_build_every_board(tmp_path, sources, name):
    lib, fw = sources
    board = load_board(name)
    res = hbuild.build(board, tmp_path / name, lib, fw)
    out = res.out
    nrf = board.port == "nrf"
    lib_tree = out / ("romfs" if board.lib_storage == "romfs" else "fs")
    expected_lib = {"lib/net/__init__.mpy", "lib/net/core.mpy", "lib/fast.mpy"}
    expected_lib |= set() if nrf else {"lib/net/dtls.mpy"}
    assert {k for k in tree_listing(lib_tree) if k.startswith("lib/")} == expected_lib
    # firmware: boot.py and main.py stay source, other firmware modules are compiled; always on the filesystem.
    assert {k for k in tree_listing(out / "fs") if not k.startswith("lib/")} == {"boot.py", "main.py", "app.mpy"}
    assert (out / "fs" / "boot.py").read_text() == "# boot\n"
    assert [s.module for s, _ in res.excluded] == (["net.dtls"] if nrf else [])
    # .mpy v6 with the board's native arch in the header of the module that has native code.
    header = (lib_tree / "lib" / "fast.mpy").read_bytes()[:4]
    assert header[:2] == b"M\x06" and header[2] >> 2 == ARCH_CODE[board.mpy_arch]
    assert (lib_tree / "lib" / "net" / "core.mpy").read_bytes()[:2] == b"M\x06"
    # The LittleFS image has exactly the partition's size.
    assert (out / "fs.img").stat().st_size == board.fs_block_size * board.fs_block_count == board.fs_size
    report = json.loads((out / "report.json").read_text())
    assert report["board"] == name and report["flash_budget"] == board.flash_budget
    assert report["bundle_bytes"] == sum(m["bytes"] for m in report["modules"]) == res.bundle_bytes
    assert {m["path"] for m in report["modules"]} == expected_lib | {"boot.py", "main.py", "app.mpy"}
    assert report["images"]["fs"]["block_count"] == board.fs_block_count
    assert report["layout"]["fs_mount"] == board.fs_mount
    assert report["layout"]["lib_on_board"] == ("/rom/lib" if nrf else "/lib")
    md = (out / "report.md").read_text()
    assert f"of {board.flash_budget} budget" in md and "net.core" in md


@pytest.mark.parametrize("name", ["ESP32_GENERIC", "ESP32_GENERIC-OTA", "PCA10059", "SEEED_XIAO_NRF52"])
def test_littlefs_image_mounts_on_the_vm_with_the_board_geometry(tmp_path, sources, name):
    lib, fw = sources
    board = load_board(name)
    res = hbuild.build(board, tmp_path / name, lib, fw)
    script = tmp_path / "mount_lfs.py"
    script.write_text(MOUNT_LFS)
    img = tmp_path / "copy.img"  # the VM mounts read-write: keep the build output untouched
    shutil.copyfile(res.out / "fs.img", img)
    proc = mpvm.run([str(script), str(img), str(board.fs_block_size), str(board.fs_block_count), "main.py"])
    text = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode() + text
    assert f"GEOMETRY {board.fs_block_size} {board.fs_block_count}" in text
    files = {line.split()[1]: int(line.split()[2]) for line in text.splitlines() if line.startswith("FILE")}
    assert files == tree_listing(res.out / "fs")
    main = (res.out / "fs" / "main.py").read_bytes()
    assert f"PROBE {len(main)} {sum(main)}" in text
    assert "WRITTEN 5000" in text


def test_repo_bundle_mounts_and_imports_on_the_vm(tmp_path):
    """The real lib/: its ESP32 LittleFS image mounts on the VM and a module imports from it."""
    board = load_board("ESP32_GENERIC")
    res = hbuild.build(board, tmp_path / "esp32")
    assert res.modules, "lib/ is empty"
    script = tmp_path / "mount_lfs.py"
    script.write_text(MOUNT_LFS + "\nsys.path.insert(0, '/m/lib')\nimport cbor\nprint('IMPORTED', cbor.__name__)\n")
    img = tmp_path / "copy.img"
    shutil.copyfile(res.out / "fs.img", img)
    probe = "lib/cbor.mpy"
    proc = mpvm.run([str(script), str(img), "4096", str(board.fs_block_count), probe], path=[])
    text = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode() + text
    files = {line.split()[1]: int(line.split()[2]) for line in text.splitlines() if line.startswith("FILE")}
    assert files == tree_listing(res.out / "fs")
    assert "IMPORTED cbor" in text and "WRITTEN 5000" in text


def test_romfs_image_mounts_on_the_vm(tmp_path, sources):
    """The ROMFS image of the real lib/ mounts with VfsRom and imports from /rom/lib; so does an nRF build's."""
    res = hbuild.build(load_board("ESP32_GENERIC"), tmp_path / "esp32")
    script = tmp_path / "mount_romfs.py"
    script.write_text(MOUNT_ROMFS)
    # the script reads the whole image into the VM heap: give it room for the image, however big lib/ grows
    heap = f"{128 + (res.out / 'romfs.img').stat().st_size // 1024}k"
    proc = mpvm.run([str(script), str(res.out / "romfs.img")], path=[], heap=heap)
    text = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode() + text
    files = {line.split()[1]: int(line.split()[2]) for line in text.splitlines() if line.startswith("FILE")}
    assert files == tree_listing(res.out / "romfs")
    assert "IMPORTED cbor" in text
    lib, fw = sources
    board = load_board("PCA10056")
    nrf = hbuild.build(board, tmp_path / "nrf", lib, fw)
    script.write_text(MOUNT_ROMFS.replace("import cbor", "import net.core as cbor"))
    proc = mpvm.run([str(script), str(nrf.out / "romfs.img")], path=[])
    text = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode() + text
    assert "IMPORTED net.core" in text
    assert (nrf.out / "romfs.img").stat().st_size <= board.romfs_size


def test_build_is_reproducible(tmp_path, sources):
    lib, fw = sources
    board = load_board("ESP32_GENERIC_C3")
    first = hbuild.build(board, tmp_path / "a" / "out", lib, fw)
    # Touch every source: new mtimes must not change a byte.
    for p in [*lib.rglob("*.py"), *fw.rglob("*.py")]:
        p.touch()
    second = hbuild.build(board, tmp_path / "b" / "out", lib, fw, jobs=1)
    assert digests(first.out) == digests(second.out)
    again = hbuild.build(load_board("ESP32_GENERIC_C3"), tmp_path / "b" / "out")
    repo_again = hbuild.build(load_board("ESP32_GENERIC_C3"), tmp_path / "a" / "out")
    assert digests(again.out) == digests(repo_again.out)


def _board_override(tmp_path: Path, name: str, **replace: str) -> Path:
    boards = tmp_path / "boards"
    shutil.copytree(BOARDS_DIR / name, boards / name)
    toml = boards / name / "board.toml"
    text = toml.read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new, 1)
    toml.write_text(text)
    return boards


def test_over_budget_fails_with_a_clear_message(tmp_path, sources):
    lib, fw = sources
    boards = _board_override(tmp_path, "ESP32_GENERIC", **{"flash = 524288": "flash = 100"})
    board = load_board("ESP32_GENERIC", boards)
    with pytest.raises(UserError, match=r"over the board's flash budget of 100 bytes by \d+\. Largest: "):
        hbuild.build(board, tmp_path / "out", lib, fw)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["within_budget"] is False and report["bundle_bytes"] > 100
    assert "OVER BUDGET" in (tmp_path / "out" / "report.md").read_text()


def test_over_budget_cli_exit_code(tmp_path, sources):
    lib, fw = sources
    boards = _board_override(tmp_path, "PCA10056", **{"flash = 258048": "flash = 100"})
    env = {**__import__("os").environ, "HOURGLASS_BOARDS_DIR": str(boards)}
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "build", "--board", "PCA10056", "--out",
                           str(tmp_path / "out"), "--lib-dir", str(lib), "--firmware-dir", str(fw)],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("hourglass build: PCA10056: the bundle is") and proc.stderr.count("\n") == 1
    assert "over the board's flash budget of 100" in proc.stderr


def test_bundle_that_does_not_fit_littlefs_fails_clearly(tmp_path):
    # Put lib/ on the 16-block LittleFS of a PCA10056: every directory costs a metadata pair, every file a block.
    boards = _board_override(tmp_path, "PCA10056", **{'lib_storage = "romfs"': 'lib_storage = "littlefs"',
                                                      "flash = 258048": "flash = 65536"})
    lib = tmp_path / "biglib"
    for i in range(6):
        (lib / f"p{i}" / f"p{i}").mkdir(parents=True)
        for j in range(3):
            (lib / f"p{i}" / f"p{i}" / f"m{j}.py").write_text(f"DATA = {list(range(400))!r}\n")
    with pytest.raises(UserError, match="do not fit its 64 KiB LittleFS"):
        hbuild.build(load_board("PCA10056", boards), tmp_path / "out", lib, tmp_path / "nofw")


def _exec_manifest(path: Path) -> list[tuple[str, Path]]:
    """Evaluate a manifest.py the way MicroPython's manifestfile does, resolving paths relative to the file;
    returns the (frozen name, source file) pairs."""
    frozen: list[tuple[str, Path]] = []
    libraries: dict[str, Path] = {}
    visited: set[Path] = set()  # manifestfile reads each manifest once, however many require() it

    def run(manifest: Path) -> None:
        if manifest.resolve() in visited:
            return
        visited.add(manifest.resolve())
        here = manifest.parent

        def module(name, base_path="."):
            src = (here / base_path / name).resolve()
            assert src.is_file(), src
            frozen.append((name, src))

        def package(name, files=None, base_path="."):
            base = (here / base_path / name).resolve()
            assert base.is_dir(), base
            names = files if files is not None else [p.relative_to(base).as_posix() for p in base.rglob("*.py")]
            for f in names:
                assert (base / f).is_file(), base / f
                frozen.append((f"{name}/{f}", base / f))

        def require(name, library=None, **_):
            root = libraries[library]
            candidates = [p for p in root.rglob("manifest.py") if p.parent.name == name]
            assert candidates, f"require({name!r}): no {name}/manifest.py under {root}"
            run(candidates[0])

        def add_library(name, path, prepend=False):
            libraries[name] = (here / path).resolve()

        env = {"module": module, "package": package, "require": require, "add_library": add_library,
               "metadata": lambda **_: None, "include": lambda *_ , **__: None}
        exec(compile(manifest.read_text(), str(manifest), "exec"), env)

    run(path)
    return frozen


@pytest.mark.parametrize("name", ["ESP32_GENERIC", "SEEED_XIAO_NRF52"])
def test_freeze_manifest_names_exactly_the_kept_modules(tmp_path, sources, name):
    lib, fw = sources
    board = load_board(name)
    res = hbuild.build(board, tmp_path / "build" / name, lib, fw)
    text = res.manifest.read_text()
    assert text.count("include(") == 1 and 'add_library("hourglass"' in text
    frozen = sorted(n for n, _ in _exec_manifest(res.manifest))
    kept = sorted(m.source.path.relative_to(lib / m.source.package).as_posix()
                  for m in res.modules if m.source.package != "firmware")
    assert frozen == kept
    if board.port == "nrf":
        assert 'package("net", files=["__init__.py", "core.py"]' in text and "dtls" not in "".join(frozen)
    else:
        assert 'require("net", library="hourglass")' in text


def test_freeze_manifest_takes_the_agent_but_what_the_filesystem_keeps(tmp_path):
    """firmware/ modules are frozen too, but boot.py and main.py (run by file name) and app.py (what an update
    replaces); they still go on the filesystem as the build deploys them."""
    lib, fw = make_sources(tmp_path / "src")
    (fw / "agent.py").write_text("def run():\n    pass\n")
    (fw / "log.py").write_text("LEVEL = 1\n")
    res = hbuild.build(load_board("ESP32_GENERIC"), tmp_path / "build", lib, fw)
    frozen = dict(_exec_manifest(res.manifest))
    assert frozen["agent.py"] == (fw / "agent.py").resolve() and frozen["log.py"] == (fw / "log.py").resolve()
    assert not {"boot.py", "main.py", "app.py"} & set(frozen)
    assert {"agent.mpy", "log.mpy", "app.mpy", "boot.py", "main.py"} <= set(tree_listing(res.out / "fs"))


def test_repo_freeze_manifest_freezes_each_module_once(tmp_path):
    """The real lib/ on ESP32_GENERIC-OTA: coap is partial there (coap._cpython left out) and coapeap, oscore and
    suit require it; their require() froze coap a second time, whole (the firmware build failed: "redefinition
    of frozen_module_coap_client"), with the module left out."""
    res = hbuild.build(load_board("ESP32_GENERIC-OTA"), tmp_path / "build")
    frozen = [n for n, _ in _exec_manifest(res.manifest)]
    assert len(frozen) == len(set(frozen))
    kept = sorted([m.source.path.relative_to(hbuild.LIB / m.source.package).as_posix()
                   for m in res.modules if m.source.package != "firmware"]
                  + [m.source.path.name for m in res.modules
                     if m.source.package == "firmware" and m.source.module not in hbuild.NOT_FROZEN])
    assert sorted(frozen) == kept and "coap/_cpython.py" not in frozen


def test_board_build_hook(tmp_path, sources):
    lib, fw = sources
    boards = _board_override(tmp_path, "ESP32_GENERIC_C3")
    (boards / "ESP32_GENERIC_C3" / "build.py").write_text(
        "def post_compile(board, build_dir):\n"
        "    (build_dir / 'fs' / 'board.txt').write_text(board.name + '\\n')\n")
    res = hbuild.build(load_board("ESP32_GENERIC_C3", boards), tmp_path / "out", lib, fw)
    assert (res.out / "fs" / "board.txt").read_text() == "ESP32_GENERIC_C3\n"


def test_cli_builds_every_board(tmp_path, sources):
    lib, fw = sources
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "build", "--all", "--out", str(tmp_path),
                           "--lib-dir", str(lib), "--firmware-dir", str(fw)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    for name in board_names():
        assert f"hourglass build: {name}:" in proc.stdout
        assert (tmp_path / name / "fs.img").is_file() and (tmp_path / name / "report.md").is_file()


@pytest.mark.parametrize("name", board_names())
def test_repo_bundle_fits_every_board(tmp_path, name):
    """The real lib/ + firmware/ within each board's flash budget (and LittleFS / ROMFS partition)."""
    board = load_board(name)
    res = hbuild.build(board, tmp_path / name)
    assert res.bundle_bytes <= board.flash_budget


def test_build_never_replaces_a_folder_it_did_not_make(tmp_path, sources):
    lib, fw = sources
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a build folder"):
        hbuild.build(load_board("ESP32_GENERIC"), precious, lib, fw)
    assert (precious / "notes.txt").read_text() == "mine"
    first = hbuild.build(load_board("ESP32_GENERIC"), tmp_path / "out", lib, fw)
    hbuild.build(load_board("ESP32_GENERIC"), first.out, lib, fw)  # its own folder: replaced


def test_vm_arch_build_imports_native_code_on_the_vm(tmp_path, sources):
    """The virtual board needs the VM's native arch: a board-arch .mpy with native code does not import there."""
    lib, fw = sources
    board = load_board("ESP32_GENERIC")
    for arch, ok in ((hbuild.host_arch(), True), (board.mpy_arch, False)):
        res = hbuild.build(board, tmp_path / arch, lib, fw, arch=arch)
        proc = mpvm.run(["-c", "import fast; print('SUM', fast.add(2, 3))"], path=[str(res.out / "fs" / "lib")])
        out = proc.stdout.decode() + proc.stderr.decode()
        assert ("SUM 5" in out) == ok, out
        if not ok:
            assert "incompatible .mpy arch" in out
    assert res.board.mpy_arch == board.mpy_arch


def test_board_mpy_cross_args(tmp_path, sources):
    lib, fw = sources
    boards = _board_override(tmp_path, "PCA10056", **{'lib_storage = "romfs"':
                                                      'lib_storage = "romfs"\nmpy_cross_args = ["-O3"]'})
    plain = hbuild.build(load_board("PCA10056"), tmp_path / "plain", lib, fw)
    small = hbuild.build(load_board("PCA10056", boards), tmp_path / "small", lib, fw)
    core = "romfs/lib/net/core.mpy"
    assert (small.out / core).stat().st_size < (plain.out / core).stat().st_size  # no line-number table


def test_build_leaves_other_folders_under_build_alone(tmp_path, sources, monkeypatch):
    lib, fw = sources
    monkeypatch.setattr(hbuild, "BUILD", tmp_path / "build")
    flash_dir = tmp_path / "build" / "vboard"
    (flash_dir / "ESP32_GENERIC").mkdir(parents=True)
    (flash_dir / "ESP32_GENERIC" / "main.py").write_text("# a virtual board's flash\n")
    with pytest.raises(UserError, match="not a build folder"):
        hbuild.build(load_board("ESP32_GENERIC"), flash_dir, lib, fw)
    old = tmp_path / "build" / "ESP32_GENERIC"  # a build from before the marker
    (old / "fs").mkdir(parents=True)
    hbuild.build(load_board("ESP32_GENERIC"), old, lib, fw)
    assert (flash_dir / "ESP32_GENERIC" / "main.py").is_file()


def test_report_states_the_flash_size_and_the_block_count_it_gives(tmp_path, sources):
    """ESP32: vfs runs from the end of the last partition to the end of flash, so the LittleFS block count follows
    the flash size the build is for (default 4 MiB; --flash-size for a bigger module)."""
    lib, fw = sources
    for flash, blocks in (("4M", 512), ("8M", 1536)):
        out = tmp_path / flash
        proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "build", "--board", "ESP32_GENERIC",
                               "--flash-size", flash, "--out", str(out), "--lib-dir", str(lib),
                               "--firmware-dir", str(fw)], capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr
        note = f"{blocks} blocks of 4096 bytes at 0x200000: from the end of the last partition to the end of the"
        assert note in proc.stdout
        report = json.loads((out / "report.json").read_text())
        assert report["flash_size"] == int(flash[0]) << 20
        assert report["filesystem"]["block_count"] == report["images"]["fs"]["block_count"] == blocks
        assert report["filesystem"]["to_end_of_flash"] is True
        assert (out / "fs.img").stat().st_size == blocks * 4096
        assert f"Filesystem: LittleFS2 {blocks} blocks" in (out / "report.md").read_text()


@pytest.mark.parametrize("argv,message", [
    (["--board", "NO_SUCH_BOARD"], "hourglass build: unknown board 'NO_SUCH_BOARD'"),
    ([], "hourglass build: give --board NAME or --all"),
    (["--board", "PCA10056", "--flash-size", "2M"], "hourglass build: PCA10056: the filesystem has a fixed place"),
])
def test_cli_user_errors_are_one_line(tmp_path, argv, message):
    env = {k: v for k, v in __import__("os").environ.items() if k != "BOARD"}
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", "build", *argv, "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
