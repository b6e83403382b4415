"""What every host tool shares: the user-error type, finding an executable, file hashes, the build layout.

One way to do each: a tool raises `UserError` for anything the user can fix (unknown board, missing port, bad
file); `cli.main` prints it once as `hourglass <command>: <message>` and exits 1. Usage errors exit 2 (argparse).
"""
from __future__ import annotations

import hashlib
import importlib
import shutil
import socket
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"


class UserError(Exception):
    """A failure the user can act on; its message is one line, printed once by `cli.main`."""


def find_executable(name: str, install_hint: str | None = None) -> str:
    """`name` from the running venv's bin/ first (the pinned tools), then PATH; UserError when neither has it.
    `install_hint` says how to get a tool that `make setup` does not install."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise UserError(f"{name} not found: {install_hint or 'run `make setup`'}")
    return found


def device_module(name: str) -> ModuleType:
    """A device module from lib/ imported on the host (e.g. "cose.algs"), with lib/<package>/ as its import root
    as on a board: host tools take protocol constants from the device code instead of declaring them again."""
    root = str(REPO / "lib" / name.split(".")[0])
    if root not in sys.path:
        sys.path.append(root)
    return importlib.import_module(name)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


class BuildLayout:
    """`build/<board>/`, as `hourglass build` writes it and deploy, flash, image and hil read it.

    fs/ is the board's filesystem tree (also packed into fs.img, LittleFS2 at the partition's exact block count);
    romfs/ the files that go into romfs.img where the board has a ROMFS partition; report.json the build report.
    """

    def __init__(self, board_name: str, root: Path | None = None):
        self.board_name = board_name
        self.root = root or BUILD / board_name

    @property
    def fs_dir(self) -> Path:
        return self.root / "fs"

    @property
    def fs_image(self) -> Path:
        return self.root / "fs.img"

    @property
    def romfs_dir(self) -> Path:
        return self.root / "romfs"

    @property
    def romfs_image(self) -> Path:
        return self.root / "romfs.img"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    def image(self, ext: str) -> Path:
        """The single flashable image of `make image` (ext with its dot: ".bin", ".hex", ".uf2")."""
        return self.root / f"{self.board_name}-image{ext}"

    @property
    def dfu_package(self) -> Path:
        return self.root / f"{self.board_name}-dfu.zip"


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that is free now (the kernel's pick, from its ephemeral range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def board_udp_port() -> int:
    """A free UDP port for a virtual board, below the kernel's ephemeral range (32768-60999 by default): a board
    lets its port go at every reset, and a port from that range can meanwhile be handed to any socket bound to
    port 0 (a client here or in a parallel test), and the board's next boot then fails to bind it (EADDRINUSE)."""
    import random
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(100):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise UserError("no free UDP port below the ephemeral range")
