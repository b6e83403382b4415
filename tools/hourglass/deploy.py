"""`hourglass deploy`: make the bundle on a board that already runs MicroPython exactly the build's, through mpremote.

Source: build/<board>/ from `hourglass build` (common.BuildLayout): fs/ holds the files as they go on the
board's filesystem at its mount point; on boards that keep lib/ in ROMFS, romfs.img goes through `mpremote
romfs deploy`. A board without ROMFS support (firmware built without it) gets romfs/lib/ on its filesystem
instead, when it fits.

One script run on the board hashes every file the build ships (hashlib.sha256), lists what the bundle owns,
and reports the filesystem's free blocks (os.statvfs); the host then copies only what differs, and removes what
the bundle owns and no longer ships:
- files the last deploy wrote (its list is kept on the board in MANIFEST) that the build no longer has;
- everything in a package directory the build ships (e.g. lib/coap/) that the build does not have;
- in the shared directories (the mount point and its lib/), the other form of a module the build ships
  (lib/coap/msg.py next to the shipped msg.mpy, as `mpremote mip install` leaves it: the source would shadow
  the bytecode) and packages shadowing a shipped module.
Anything else (config.json, keys, a library the user installed) stays. A build that does not fit in the
board's free space is refused before anything is written.

Before mpremote starts, the board is brought to its prompt (repl.take_over: one Ctrl-C at a time, so an app that
reads the console cannot swallow mpremote's Ctrl-A); a port that does not open or a board that never shows a
prompt is one line. If mpremote fails later (for example a board whose raw-paste mode breaks), the same steps
run through ampy, which only uses the plain raw REPL. --dry-run prints the exact invocations without contacting
the board (every file then counts as changed, nothing as stale).
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from hourglass import boards, repl
from hourglass.common import BuildLayout, UserError, find_executable, sha256_file

MANIFEST = ".bundle-files"  # at the mount point: the files the last deploy wrote, one path a line
MODULE_SUFFIXES = (".py", ".mpy")

# Runs on the board: hashes the listed files, says which directories exist, lists what the bundle owns, reads
# the last deploy's manifest, reports free space and what the ROMFS partition holds.
# PATHS, DIRS, OWNED, SHARED, MANIFEST, MOUNT and ROMFS_LEN are prepended by board_query_script().
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
def _walk(d, deep):
    try:
        entries = list(os.ilistdir(d))
    except OSError:
        return
    for e in entries:
        p = d.rstrip('/') + '/' + e[0]
        if e[1] & 0x4000:
            print('HG:S', p)
            if deep:
                _walk(p, deep)
        else:
            print('HG:F', p)
for d in OWNED:
    _walk(d, True)
for d in SHARED:
    _walk(d, False)
def _exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False
try:
    with open(MANIFEST) as f:
        listed = [line.strip() for line in f if line.strip()]
except OSError:
    listed = []
for p in listed:
    print('HG:O', p)
    if _exists(p):
        print('HG:F', p)
    d = p.rsplit('/', 1)[0]
    if d and _exists(d):
        print('HG:S', d)
try:
    v = os.statvfs(MOUNT)
    print('HG:V', v[0], v[2], v[3])
except (OSError, AttributeError):
    pass
if ROMFS_LEN:
    try:
        import vfs
        dev = vfs.rom_ioctl(2, 0)
        if isinstance(dev, int) or hasattr(dev, 'ioctl'):
            print('HG:R', 'unreadable')
        else:
            d = hashlib.sha256(memoryview(dev)[:ROMFS_LEN])
            print('HG:R', binascii.hexlify(d.digest()).decode())
    except (ImportError, AttributeError):
        print('HG:R', 'none')
print('HG:END')
"""


@dataclass
class FileEntry:
    local: Path
    remote: str
    size: int
    sha256: str


@dataclass
class BoardState:
    """What the hash query found on the board."""
    hashes: dict[str, str | None] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)     # under the owned and shared directories
    subdirs: set[str] = field(default_factory=set)
    manifest: set[str] = field(default_factory=set)
    statvfs: tuple[int, int, int] | None = None     # block size, blocks, free blocks
    romfs: str | None = None


@dataclass
class Plan:
    board: boards.Board
    layout: BuildLayout
    files: list[FileEntry]
    romfs_image: Path | None
    dirs: list[str]
    changed: list[FileEntry] = field(default_factory=list)
    missing_dirs: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)       # files to remove
    stale_dirs: list[str] = field(default_factory=list)  # owned directories the build no longer has
    romfs_action: str = "none"  # none | deploy | up-to-date | to-fs

    @property
    def mount(self) -> str:
        return self.board.fs_mount

    @property
    def shared_dirs(self) -> list[str]:
        """Directories the bundle shares with the user: only what it ships there (and shadows of it) is its own."""
        root = PurePosixPath(self.mount)
        return [str(root), str(root / "lib")]

    @property
    def owned_dirs(self) -> list[str]:
        """Directories wholly the bundle's: those it ships, below the shared ones (lib/coap/, ...)."""
        shared = set(self.shared_dirs)
        return [d for d in self.dirs if d not in shared and str(PurePosixPath(d).parent) in shared]


def _entries(tree: Path, mount: str) -> list[FileEntry]:
    out = []
    for p in sorted(q for q in tree.rglob("*") if q.is_file()):
        remote = str(PurePosixPath(mount) / p.relative_to(tree).as_posix())
        out.append(FileEntry(p, remote, p.stat().st_size, sha256_file(p)))
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


def make_plan(board: boards.Board, layout: BuildLayout, romfs_to_fs: bool = False) -> Plan:
    if not layout.fs_dir.is_dir() or not layout.report.is_file():
        raise UserError(f"no build for {board.name} in {layout.root}: run `make build BOARD={board.name}` first")
    try:
        lib_storage = json.loads(layout.report.read_text()).get("lib_storage", "littlefs")
    except json.JSONDecodeError as e:
        raise UserError(f"{layout.report}: not a build report ({e})") from None
    files = _entries(layout.fs_dir, board.fs_mount)
    romfs_image = None
    if lib_storage == "romfs":
        if romfs_to_fs:
            files += _entries(layout.romfs_dir, board.fs_mount)
        else:
            romfs_image = layout.romfs_image
    plan = Plan(board, layout, files, romfs_image, [])
    plan.dirs = _parent_dirs(files, board.fs_mount)
    return plan


def board_query_script(plan: Plan) -> str:
    romfs_len = plan.romfs_image.stat().st_size if plan.romfs_image else 0
    manifest = str(PurePosixPath(plan.mount) / MANIFEST)
    return (f"PATHS = {[f.remote for f in plan.files]!r}\nDIRS = {plan.dirs!r}\nOWNED = {plan.owned_dirs!r}\n"
            f"SHARED = {plan.shared_dirs!r}\nMANIFEST = {manifest!r}\nMOUNT = {plan.mount!r}\n"
            f"ROMFS_LEN = {romfs_len}\n" + QUERY_BODY)


def parse_query(text: str) -> BoardState:
    state = BoardState()
    complete = False
    for line in text.splitlines():
        parts = line.strip().split(" ", 2)
        kind, args = parts[0], parts[1:]
        if kind == "HG:H" and len(args) == 2:
            state.hashes[args[1]] = args[0]
        elif kind == "HG:M" and len(args) == 1:
            state.hashes[args[0]] = None
        elif kind == "HG:D" and len(args) == 1:
            state.dirs.add(args[0])
        elif kind == "HG:F" and args:
            state.files.add(" ".join(args))
        elif kind == "HG:S" and args:
            state.subdirs.add(" ".join(args))
        elif kind == "HG:O" and args:
            state.manifest.add(" ".join(args))
        elif kind == "HG:V" and len(args) == 2:
            bsize, rest = args
            blocks, free = rest.split()
            state.statvfs = (int(bsize), int(blocks), int(free))
        elif kind == "HG:R" and len(args) == 1:
            state.romfs = args[0]
        elif kind == "HG:END":
            complete = True
    if not complete:
        raise DeployFailed("the board did not finish the hash query:\n" + text[-2000:])
    return state


def _module(path: str) -> str | None:
    p = PurePosixPath(path)
    return str(p.with_suffix("")) if p.suffix in MODULE_SUFFIXES else None


def find_stale(plan: Plan, state: BoardState) -> None:
    """What the bundle owns on the board and the build no longer ships (see the module docstring)."""
    shipped = {f.remote for f in plan.files}
    manifest_file = str(PurePosixPath(plan.mount) / MANIFEST)
    modules = {_module(r) for r in shipped} - {None}
    owned = tuple(d.rstrip("/") + "/" for d in plan.owned_dirs)
    shared = set(plan.shared_dirs)
    stale = set()
    for path in state.files | state.manifest:
        if path in shipped or path == manifest_file:
            continue
        in_owned = path.startswith(owned)
        shadow = str(PurePosixPath(path).parent) in shared and _module(path) in modules
        if in_owned or shadow or path in state.manifest:
            stale.add(path)
    # Packages the build ships as modules (lib/cbor/ where lib/cbor.mpy is shipped), and directories of the
    # bundle's the build no longer has (owned, or holding files of the last deploy): removed with what they hold.
    gone = {str(PurePosixPath(p).parent) for p in state.manifest} - shared - set(plan.dirs)
    stale_dirs = sorted(d for d in state.subdirs
                        if (str(PurePosixPath(d).parent) in shared and d in modules)
                        or (d.startswith(owned) and d not in plan.dirs) or d in gone)
    plan.stale_dirs = [d for d in stale_dirs if not any(d.startswith(o + "/") for o in stale_dirs)]
    under = tuple(d + "/" for d in plan.stale_dirs)
    plan.stale = sorted(p for p in stale if p in state.files and not p.startswith(under))


def check_space(plan: Plan, state: BoardState) -> None:
    """Refuse a build that cannot fit: the changed files' blocks against the free blocks plus what is freed."""
    if state.statvfs is None:
        return
    bsize, blocks, free = state.statvfs
    if bsize <= 0:
        return

    def nblocks(size: int) -> int:
        return -(-size // bsize)

    sizes = {f.remote: f.size for f in plan.files}
    need = sum(nblocks(f.size) for f in plan.changed) + 2 * len(plan.missing_dirs)
    # A replaced file frees its old blocks only after it is rewritten; count the changed files' own size once.
    freed = sum(nblocks(sizes.get(p, 0)) for p in plan.stale)
    if need > free + freed:
        total = sum(nblocks(f.size) for f in plan.files)
        raise UserError(f"the build does not fit on {plan.board.name}'s filesystem at {plan.mount}: it needs "
                        f"{need * bsize // 1024} KiB more, {free * bsize // 1024} KiB of "
                        f"{blocks * bsize // 1024} KiB are free ({total * bsize // 1024} KiB for all "
                        f"{len(plan.files)} files)")


def apply_query(plan: Plan, text: str) -> BoardState:
    """Marks what differs on the board and what is stale."""
    state = parse_query(text)
    plan.changed = [f for f in plan.files if state.hashes.get(f.remote) != f.sha256]
    plan.missing_dirs = [d for d in plan.dirs if d not in state.dirs]
    if plan.romfs_image is not None:
        plan.romfs_action = "up-to-date" if state.romfs == sha256_file(plan.romfs_image) else "deploy"
    find_stale(plan, state)
    return state


def move_romfs_to_fs(plan: Plan) -> None:
    """The board's firmware has no ROMFS: lib/ goes on the filesystem instead."""
    plan.files += _entries(plan.layout.romfs_dir, plan.board.fs_mount)
    plan.dirs = _parent_dirs(plan.files, plan.board.fs_mount)
    plan.romfs_image = None
    plan.romfs_action = "to-fs"


class DeployFailed(Exception):
    """A tool failed talking to the board (Deployer tries the next tool, then raises UserError)."""


# ---- the two tools -------------------------------------------------------------------------------------------

class Tool:
    name = ""

    def __init__(self, port: str, resume: bool):
        self.port = port
        self.resume = resume


class Mpremote(Tool):
    name = "mpremote"

    def base(self) -> list[str]:
        return [find_executable("mpremote"), "connect", self.port] + (["resume"] if self.resume else [])

    def query(self, script_file: Path) -> list[list[str]]:
        return [self.base() + ["run", str(script_file)]]

    def copy(self, plan: Plan, manifest: Path | None = None) -> list[list[str]]:
        steps: list[str] = []
        for d in plan.stale_dirs:
            steps += ["+", "fs", "rm", "-r", ":" + d]
        for p in plan.stale:
            steps += ["+", "fs", "rm", ":" + p]
        for d in plan.missing_dirs:
            steps += ["+", "fs", "mkdir", ":" + d]
        for f in plan.changed:
            steps += ["+", "fs", "cp", "-f", str(f.local), ":" + f.remote]
        if manifest is not None:
            steps += ["+", "fs", "cp", "-f", str(manifest), ":" + str(PurePosixPath(plan.mount) / MANIFEST)]
        cmds = [self.base() + steps[1:]] if steps else []
        if plan.romfs_action == "deploy":
            cmds.append(self.base() + ["romfs", "deploy", str(plan.romfs_image)])
        return cmds


class Ampy(Tool):
    name = "ampy"

    def base(self) -> list[str]:
        return [find_executable("ampy"), "--port", self.port]

    def query(self, script_file: Path) -> list[list[str]]:
        return [self.base() + ["run", str(script_file)]]

    def copy(self, plan: Plan, manifest: Path | None = None) -> list[list[str]]:
        cmds = [self.base() + ["rmdir", d] for d in plan.stale_dirs]
        cmds += [self.base() + ["rm", p] for p in plan.stale]
        cmds += [self.base() + ["mkdir", "--exists-okay", d] for d in plan.missing_dirs]
        cmds += [self.base() + ["put", str(f.local), f.remote] for f in plan.changed]
        if manifest is not None:
            cmds.append(self.base() + ["put", str(manifest), str(PurePosixPath(plan.mount) / MANIFEST)])
        return cmds  # ampy cannot write a ROMFS partition: Deployer stops before copying if one is due


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeployFailed(f"{Path(cmd[0]).name} did not finish within {timeout:g} s") from None


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
    except subprocess.TimeoutExpired:
        raise DeployFailed(f"{Path(cmd[0]).name} did not finish within {timeout:g} s") from None
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode != 0:
        raise DeployFailed(f"{Path(cmd[0]).name} failed ({proc.returncode}):\n" + "".join(out)[-3000:])
    if current:
        bar.update(current.size)
    elif "put" in cmd and Path(cmd[-2]).is_file():  # ampy: one file per invocation, silent
        bar.update(Path(cmd[-2]).stat().st_size)


class Deployer:
    def __init__(self, plan: Plan, port: str, resume: bool = False, tool: str = "auto",
                 timeout: float = 600, take_over_timeout: float = repl.TAKE_OVER_TIMEOUT, out=print):
        self.plan = plan
        self.port = port
        self.resume = resume
        self.tool = tool
        self.timeout = timeout
        self.take_over_timeout = take_over_timeout
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
            cmds += t.copy(plan, self._manifest_path())
        return cmds

    def _write_query(self) -> Path:
        """The hash query is a file next to the build output, so the printed invocations can be rerun."""
        # Beside the build folder, not in it: the build output stays exactly what `hourglass build` made.
        root = self.plan.layout.root
        path = root.parent / f"{root.name}.deploy-query.py"
        text = board_query_script(self.plan)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        return path

    def _manifest_path(self) -> Path:
        root = self.plan.layout.root
        return root.parent / f"{root.name}.deploy-files.txt"

    def _write_manifest(self) -> Path:
        path = self._manifest_path()
        path.write_text("".join(f.remote + "\n" for f in self.plan.files))
        return path

    def run(self) -> Plan:
        self.out(f"deploy: taking over the board on {self.port} (Ctrl-C until its prompt)")
        repl.take_over(self.port, self.take_over_timeout)
        tools = {"auto": [Mpremote, Ampy], "mpremote": [Mpremote], "ampy": [Ampy]}[self.tool]
        error = None
        for cls in tools:
            tool = cls(self.port, self.resume)
            try:
                self._run_with(tool)
                self.used_tool = tool.name
                return self.plan
            except DeployFailed as e:
                error = e
                if cls is not tools[-1]:
                    self.out(f"deploy: {tool.name} failed; falling back to ampy (plain raw REPL, no raw-paste)\n"
                             f"  {str(e).strip().splitlines()[-1] if str(e).strip() else e}")
        last = str(error).strip().splitlines()
        raise UserError(f"{tools[-1].name} failed: {last[-1] if last else error}")

    def _query(self, tool: Tool) -> str:
        (cmd,) = tool.query(self._write_query())
        proc = _run(cmd, self.timeout)
        if proc.returncode != 0:
            raise DeployFailed(f"{tool.name} hash query failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def _run_with(self, tool: Tool) -> None:
        from tqdm import tqdm

        plan = self.plan
        self.out(f"deploy: hashing {len(plan.files)} files on the board with {tool.name}")
        state = apply_query(plan, self._query(tool))
        if plan.romfs_image is not None and state.romfs == "none":
            self.out("deploy: the board's firmware has no ROMFS: lib/ goes on its filesystem instead")
            move_romfs_to_fs(plan)
            state = apply_query(plan, self._query(tool))
        check_space(plan, state)
        nbytes = sum(f.size for f in plan.changed)
        up_to_date = len(plan.files) - len(plan.changed)
        romfs = {"deploy": "; romfs.img changed: mpremote romfs deploy",
                 "up-to-date": "; romfs.img up to date"}.get(plan.romfs_action, "")
        self.out(f"deploy: {plan.board.name} on {self.port}: {len(plan.changed)} of {len(plan.files)} files to "
                 f"copy ({nbytes} bytes), {up_to_date} up to date, {len(plan.missing_dirs)} directories to "
                 f"create, {len(plan.stale) + len(plan.stale_dirs)} stale to remove{romfs}")
        for d in plan.stale_dirs:
            self.out(f"  remove :{d}/ (the bundle's, no longer in the build)")
        for p in plan.stale:
            self.out(f"  remove :{p} (the bundle's, no longer in the build)")
        for f in plan.changed:
            rel = f.local.relative_to(plan.layout.root) if f.local.is_relative_to(plan.layout.root) else f.local
            self.out(f"  {rel} -> :{f.remote} ({f.size} bytes)")
        if tool.name == "ampy" and plan.romfs_action == "deploy":
            raise DeployFailed("ampy cannot write the ROMFS partition: use --romfs-to-fs, or fix mpremote access")
        manifest = None
        if plan.changed or plan.stale or plan.stale_dirs or state.manifest != {f.remote for f in plan.files}:
            manifest = self._write_manifest()
        cmds = tool.copy(plan, manifest)
        if not cmds:
            return
        with tqdm(total=nbytes, unit="B", unit_scale=True, desc=f"deploy ({tool.name})",
                  disable=None, file=sys.stderr) as bar:
            for cmd in cmds:
                if "romfs" in cmd:
                    proc = _run(cmd, self.timeout)
                    if proc.returncode != 0:
                        raise DeployFailed(f"mpremote romfs deploy failed:\n{proc.stdout}{proc.stderr}")
                else:
                    _run_copy(cmd, plan, bar, self.timeout)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "deploy", help="make the bundle on a board running MicroPython exactly the build's",
        description="Copy build/<board>/fs/ (and romfs.img where lib/ lives in ROMFS) to a board that runs "
                    "MicroPython, through mpremote: only files whose sha256 differs from the board's are "
                    "copied, and files the bundle owns but the build no longer ships are removed (user data "
                    "such as config.json stays). Falls back to ampy when mpremote fails.")
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
    p.add_argument("--timeout", type=float, default=repl.TAKE_OVER_TIMEOUT, metavar="SECONDS",
                   help="how long to try to reach the board's prompt (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the exact tool invocations without contacting the board")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    try:
        board = boards.load_board(args.board)
    except boards.BoardError as e:
        raise UserError(str(e)) from None
    if not args.port:
        raise UserError("no serial port given: pass --port PORT (make deploy PORT=...)")
    plan = make_plan(board, BuildLayout(board.name, args.build_dir), romfs_to_fs=args.romfs_to_fs)
    deployer = Deployer(plan, args.port, resume=args.resume, tool=args.tool, take_over_timeout=args.timeout)
    if args.dry_run:
        print(f"# deploy {board.name} to {args.port}: {len(plan.files)} files from {plan.layout.fs_dir} to "
              f"{board.fs_mount}" + (", romfs.img by mpremote romfs deploy" if plan.romfs_image else "")
              + "; dry run: the board is not contacted, so every file counts as changed and none as stale; "
              "ampy lines run only if mpremote fails")
        for cmd in deployer.dry_run():
            print(shlex.join(cmd))
        if args.reset:
            print(shlex.join(Mpremote(args.port, True).base() + ["reset"]))
        return 0
    deployer.run()
    if args.reset:
        _run(Mpremote(args.port, True).base() + ["reset"], 60)
        print("deploy: board reset")
    print(f"deploy: done with {deployer.used_tool}")
    return 0

