"""`hourglass deploy`: push the built bundle to a board that already runs MicroPython, through mpremote.

Source: build/<board>/ from `hourglass build` (boards/README.md): fs/ holds the files as they go on the board's
filesystem at its mount point; on boards that keep lib/ in ROMFS, romfs.img goes through `mpremote romfs deploy`.
A board without ROMFS support (the virtual board, or firmware built without it) gets romfs/lib/ on its
filesystem instead.

Only changed files are copied: one script run on the board hashes every target file with hashlib.sha256 and the
host compares with its own hashes. If mpremote fails (for example a board whose raw-paste mode breaks), the same
steps run through ampy, which only uses the plain raw REPL. Every step is printed; --dry-run prints the exact
invocations without contacting the board (every file then counts as changed).
"""
from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from hourglass import boards
from hourglass.repl import mpremote_binary

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"

# Runs on the board: hashes the listed files, says which directories exist and what the ROMFS partition holds.
# PATHS, DIRS and ROMFS_LEN are prepended by board_query_script().
QUERY_BODY = """
import os, hashlib, binascii
def _h(read):
    d = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    while True:
        n = read(b)
        if not n:
            break
        d.update(m[:n])
    return binascii.hexlify(d.digest()).decode()
for p in PATHS:
    try:
        f = open(p, 'rb')
    except OSError:
        print('HG:M', p)
        continue
    with f:
        print('HG:H', _h(f.readinto), p)
for p in DIRS:
    try:
        os.stat(p)
        print('HG:D', p)
    except OSError:
        pass
if ROMFS_LEN:
    try:
        import vfs
        dev = vfs.rom_ioctl(2, 0)
        if isinstance(dev, int) or hasattr(dev, 'ioctl'):
            print('HG:R', 'unreadable')
        else:
            d = hashlib.sha256(dev[:ROMFS_LEN])
            print('HG:R', binascii.hexlify(d.digest()).decode())
    except (ImportError, AttributeError):
        print('HG:R', 'none')
print('HG:END')
"""


class DeployError(RuntimeError):
    pass


@dataclass
class FileEntry:
    local: Path
    remote: str
    size: int
    sha256: str


@dataclass
class Plan:
    board: boards.Board
    build_dir: Path
    files: list[FileEntry]
    romfs_image: Path | None
    dirs: list[str]
    changed: list[FileEntry] = field(default_factory=list)
    missing_dirs: list[str] = field(default_factory=list)
    romfs_action: str = "none"  # none | deploy | up-to-date | to-fs


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entries(tree: Path, mount: str) -> list[FileEntry]:
    out = []
    for p in sorted(q for q in tree.rglob("*") if q.is_file()):
        remote = str(PurePosixPath(mount) / p.relative_to(tree).as_posix())
        out.append(FileEntry(p, remote, p.stat().st_size, _sha256(p)))
    return out


def _parent_dirs(files: list[FileEntry], mount: str) -> list[str]:
    dirs = set()
    root = PurePosixPath(mount)
    for f in files:
        for parent in PurePosixPath(f.remote).parents:
            if parent == root or len(parent.parts) <= len(root.parts):
                break
            dirs.add(str(parent))
    return sorted(dirs, key=lambda d: (d.count("/"), d))


def make_plan(board: boards.Board, build_dir: Path, romfs_to_fs: bool = False) -> Plan:
    fs_dir = build_dir / "fs"
    report = build_dir / "report.json"
    if not fs_dir.is_dir() or not report.is_file():
        raise DeployError(f"no build for {board.name} in {build_dir}: run `make build BOARD={board.name}` first")
    lib_storage = json.loads(report.read_text()).get("lib_storage", "littlefs")
    files = _entries(fs_dir, board.fs_mount)
    romfs_image = None
    if lib_storage == "romfs":
        if romfs_to_fs:
            files += _entries(build_dir / "romfs", board.fs_mount)
        else:
            romfs_image = build_dir / "romfs.img"
    plan = Plan(board, build_dir, files, romfs_image, [])
    plan.dirs = _parent_dirs(files, board.fs_mount)
    return plan


def board_query_script(plan: Plan) -> str:
    romfs_len = plan.romfs_image.stat().st_size if plan.romfs_image else 0
    return (f"PATHS = {[f.remote for f in plan.files]!r}\nDIRS = {plan.dirs!r}\nROMFS_LEN = {romfs_len}\n"
            + QUERY_BODY)


def parse_query(text: str) -> tuple[dict[str, str | None], set[str], str | None]:
    hashes: dict[str, str | None] = {}
    dirs: set[str] = set()
    romfs = None
    complete = False
    for line in text.splitlines():
        parts = line.strip().split(" ", 2)
        if parts[0] == "HG:H" and len(parts) == 3:
            hashes[parts[2]] = parts[1]
        elif parts[0] == "HG:M" and len(parts) == 2:
            hashes[parts[1]] = None
        elif parts[0] == "HG:D" and len(parts) == 2:
            dirs.add(parts[1])
        elif parts[0] == "HG:R" and len(parts) == 2:
            romfs = parts[1]
        elif parts[0] == "HG:END":
            complete = True
    if not complete:
        raise DeployError("the board did not finish the hash query:\n" + text[-2000:])
    return hashes, dirs, romfs


def apply_query(plan: Plan, text: str) -> str | None:
    """Marks what differs on the board; returns what the board said about its ROMFS."""
    hashes, dirs, romfs = parse_query(text)
    plan.changed = [f for f in plan.files if hashes.get(f.remote) != f.sha256]
    plan.missing_dirs = [d for d in plan.dirs if d not in dirs]
    if plan.romfs_image is not None:
        plan.romfs_action = "up-to-date" if romfs == _sha256(plan.romfs_image) else "deploy"
    return romfs


def move_romfs_to_fs(plan: Plan) -> None:
    """The board's firmware has no ROMFS: lib/ goes on the filesystem instead."""
    plan.files += _entries(plan.build_dir / "romfs", plan.board.fs_mount)
    plan.dirs = _parent_dirs(plan.files, plan.board.fs_mount)
    plan.romfs_image = None
    plan.romfs_action = "to-fs"


# ---- the two tools -------------------------------------------------------------------------------------------

class Tool:
    name = ""

    def __init__(self, port: str, resume: bool):
        self.port = port
        self.resume = resume


class Mpremote(Tool):
    name = "mpremote"

    def base(self) -> list[str]:
        return [mpremote_binary(), "connect", self.port] + (["resume"] if self.resume else [])

    def query(self, script_file: Path) -> list[list[str]]:
        return [self.base() + ["run", str(script_file)]]

    def copy(self, plan: Plan) -> list[list[str]]:
        steps: list[str] = []
        for d in plan.missing_dirs:
            steps += ["+", "fs", "mkdir", ":" + d]
        for f in plan.changed:
            steps += ["+", "fs", "cp", "-f", str(f.local), ":" + f.remote]
        cmds = [self.base() + steps[1:]] if steps else []
        if plan.romfs_action == "deploy":
            cmds.append(self.base() + ["romfs", "deploy", str(plan.romfs_image)])
        return cmds


class Ampy(Tool):
    name = "ampy"

    def base(self) -> list[str]:
        exe = Path(sys.executable).parent / "ampy"
        return [str(exe) if exe.exists() else (shutil.which("ampy") or "ampy"), "--port", self.port]

    def query(self, script_file: Path) -> list[list[str]]:
        return [self.base() + ["run", str(script_file)]]

    def copy(self, plan: Plan) -> list[list[str]]:
        cmds = [self.base() + ["mkdir", "--exists-okay", d] for d in plan.missing_dirs]
        cmds += [self.base() + ["put", str(f.local), f.remote] for f in plan.changed]
        return cmds  # ampy cannot write a ROMFS partition: Deployer stops before copying if one is due


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _run_copy(cmd: list[str], plan: Plan, bar, timeout: float) -> None:
    """Runs one copy invocation, moving the progress bar as mpremote reports each file ("cp SRC :DEST")."""
    by_local = {str(f.local): f for f in plan.changed}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    current = None
    try:
        for line in proc.stdout:
            out.append(line)
            words = line.split()
            if len(words) >= 3 and words[0] == "cp" and words[1] in by_local:
                if current:
                    bar.update(current.size)
                current = by_local[words[1]]
                bar.set_postfix_str(current.remote, refresh=False)
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode != 0:
        raise DeployError(f"{Path(cmd[0]).name} failed ({proc.returncode}):\n" + "".join(out)[-3000:])
    if current:
        bar.update(current.size)
    elif "put" in cmd:  # ampy: one file per invocation, silent
        bar.update(Path(cmd[-2]).stat().st_size)


class Deployer:
    def __init__(self, plan: Plan, port: str, resume: bool = False, tool: str = "auto",
                 timeout: float = 600, out=print):
        self.plan = plan
        self.port = port
        self.resume = resume
        self.tool = tool
        self.timeout = timeout
        self.out = out
        self.used_tool = None

    def dry_run(self) -> list[list[str]]:
        plan = self.plan
        plan.changed = list(plan.files)
        plan.missing_dirs = list(plan.dirs)
        plan.romfs_action = "deploy" if plan.romfs_image else "none"
        script_file = self._write_query()
        tools = [Mpremote(self.port, self.resume), Ampy(self.port, self.resume)]
        if self.tool != "auto":
            tools = [t for t in tools if t.name == self.tool]
        cmds = []
        for t in tools:
            cmds += t.query(script_file)
            cmds += t.copy(plan)
        return cmds

    def _write_query(self) -> Path:
        """The hash query is a file next to the build output, so the printed invocations can be rerun."""
        # Beside the build folder, not in it: the build output stays exactly what `hourglass build` made.
        path = self.plan.build_dir.parent / f"{self.plan.build_dir.name}.deploy-query.py"
        text = board_query_script(self.plan)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        return path

    def run(self) -> Plan:
        tools = {"auto": [Mpremote, Ampy], "mpremote": [Mpremote], "ampy": [Ampy]}[self.tool]
        error = None
        for cls in tools:
            tool = cls(self.port, self.resume)
            try:
                self._run_with(tool)
                self.used_tool = tool.name
                return self.plan
            except (DeployError, subprocess.TimeoutExpired) as e:
                error = e
                if cls is not tools[-1]:
                    self.out(f"deploy: {tool.name} failed; falling back to ampy (plain raw REPL, no raw-paste)\n"
                             f"  {str(e).strip().splitlines()[-1] if str(e).strip() else e}")
        raise DeployError(str(error))

    def _query(self, tool: Tool) -> str:
        (cmd,) = tool.query(self._write_query())
        proc = _run(cmd, self.timeout)
        if proc.returncode != 0:
            raise DeployError(f"{tool.name} hash query failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def _run_with(self, tool: Tool) -> None:
        from tqdm import tqdm

        plan = self.plan
        self.out(f"deploy: hashing {len(plan.files)} files on the board with {tool.name}")
        romfs = apply_query(plan, self._query(tool))
        if plan.romfs_image is not None and romfs == "none":
            self.out("deploy: the board's firmware has no ROMFS: lib/ goes on its filesystem instead")
            move_romfs_to_fs(plan)
            apply_query(plan, self._query(tool))
        nbytes = sum(f.size for f in plan.changed)
        up_to_date = len(plan.files) - len(plan.changed)
        romfs = {"deploy": "; romfs.img changed: mpremote romfs deploy",
                 "up-to-date": "; romfs.img up to date"}.get(plan.romfs_action, "")
        self.out(f"deploy: {plan.board.name} on {self.port}: {len(plan.changed)} of {len(plan.files)} files to "
                 f"copy ({nbytes} bytes), {up_to_date} up to date, {len(plan.missing_dirs)} directories to "
                 f"create{romfs}")
        for f in plan.changed:
            self.out(f"  {f.local.relative_to(plan.build_dir) if f.local.is_relative_to(plan.build_dir) else f.local}"
                     f" -> :{f.remote} ({f.size} bytes)")
        if tool.name == "ampy" and plan.romfs_action == "deploy":
            raise DeployError("ampy cannot write the ROMFS partition: use --romfs-to-fs, or fix mpremote access")
        cmds = tool.copy(plan)
        if not cmds:
            return
        with tqdm(total=nbytes, unit="B", unit_scale=True, desc=f"deploy ({tool.name})",
                  disable=None, file=sys.stderr) as bar:
            for cmd in cmds:
                if "romfs" in cmd:
                    proc = _run(cmd, self.timeout)
                    if proc.returncode != 0:
                        raise DeployError(f"mpremote romfs deploy failed:\n{proc.stdout}{proc.stderr}")
                else:
                    _run_copy(cmd, plan, bar, self.timeout)


def build_dir_for(board: boards.Board, build_dir: Path | None) -> Path:
    return build_dir or BUILD / board.name


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "deploy", help="push the built bundle to a board running MicroPython (only changed files)",
        description="Copy build/<board>/fs/ (and romfs.img where lib/ lives in ROMFS) to a board that runs "
                    "MicroPython, through mpremote; only files whose sha256 differs from the board's are "
                    "copied. Falls back to ampy when mpremote fails.")
    p.add_argument("--board", "-b", required=True, help="board name (a folder in boards/)")
    p.add_argument("--port", "-p", required=True, help="serial port, e.g. /dev/ttyUSB0 or a vboard pty")
    p.add_argument("--build-dir", type=Path, default=None, help="build output (default: build/<board>)")
    p.add_argument("--tool", choices=("auto", "mpremote", "ampy"), default="auto",
                   help="auto: mpremote, then ampy if mpremote fails (default)")
    p.add_argument("--resume", action="store_true",
                   help="do not soft-reset the board before each mpremote step (mpremote `resume`)")
    p.add_argument("--romfs-to-fs", action="store_true",
                   help="put lib/ on the filesystem even on boards that keep it in ROMFS")
    p.add_argument("--reset", action="store_true", help="hard-reset the board afterwards (starts main.py)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the exact tool invocations without contacting the board")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    try:
        board = boards.load_board(args.board)
        plan = make_plan(board, build_dir_for(board, args.build_dir), romfs_to_fs=args.romfs_to_fs)
    except (boards.BoardError, DeployError) as e:
        print(f"deploy: {e}", file=sys.stderr)
        return 2
    deployer = Deployer(plan, args.port, resume=args.resume, tool=args.tool)
    if args.dry_run:
        print(f"# deploy {board.name} to {args.port}: {len(plan.files)} files from {plan.build_dir}/fs to "
              f"{board.fs_mount}" + (", romfs.img by mpremote romfs deploy" if plan.romfs_image else "")
              + "; dry run: the board is not contacted, so every file counts as changed; "
              "ampy lines run only if mpremote fails")
        for cmd in deployer.dry_run():
            print(shlex.join(cmd))
        if args.reset:
            print(shlex.join(Mpremote(args.port, True).base() + ["reset"]))
        return 0
    try:
        deployer.run()
    except DeployError as e:
        print(f"deploy: {e}", file=sys.stderr)
        return 1
    if args.reset:
        subprocess.run(Mpremote(args.port, True).base() + ["reset"], timeout=60)
        print("deploy: board reset")
    print(f"deploy: done with {deployer.used_tool}")
    return 0
