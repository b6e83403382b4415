"""`hourglass vboard`: the real MicroPython VM as a virtual board, its REPL on a pty.

    user (mpremote, ampy, a terminal) <-> pty "serial port" <-> supervisor <-> pty <-> micropython VM

Every board fact comes from boards/<NAME>/board.toml (hourglass.boards.Board):
- The flash directory is the board's filesystem at the board's mount point ("/" on ESP32, "/flash" on
  nRF52840); cwd and sys.path are the board's (vboard_boot.py runs first in the VM and sets them up), and
  os.statvfs reports the board's filesystem (block size and count) with what the directory holds as used.
  Writes that would overflow it fail with ENOSPC, as on the board.
- A board whose firmware has a ROMFS partition has one here too (vfs.rom_ioctl, so `mpremote romfs deploy`
  works; its bytes persist in FLASH.romfs beside the flash directory), mounted at /rom with /rom/lib on sys.path.
- The heap is the board's (Board.vm_heap: the 64-bit VM counts double), plus the ROMFS partition's bytes,
  which live in the VM's heap where a board maps them from flash, plus what the boot script keeps (BOOT_HEAP).
- Output looks like a board's: text lines end in CR LF, and tracebacks do not show vboard_boot.py's frames.
  While the program uses the console as a data line (micropython.kbd_intr(-1)) its bytes pass unchanged.
- Soft reset (Ctrl-D at an empty prompt, sys.exit(), machine.soft_reset()) makes the bare VM exit; the
  supervisor prints "MPY: soft reboot" and starts a fresh VM in the REPL mode it was in, running boot.py,
  and main.py after a friendly-REPL reset only, as boards do. machine.reset() (or SIGHUP to `hourglass
  vboard`, or VirtualBoard.hard_reset()) is a hard reset: fresh VM, boot.py and main.py, friendly REPL.
  The pty stays the same across resets and files in the flash directory stay as they are.
- Ctrl-C: the unix port has no serial interrupt character, it takes SIGINT, and SIGINT at its prompt ends it.
  ReplTracker follows the REPL state from the VM's output and the user's input; the supervisor sends SIGINT
  only while code runs; at a prompt Ctrl-C goes through as a byte, like on a board. While the program has
  disabled it with micropython.kbd_intr(-1) (mpremote `mount` transfers, coap.serial on the console) it is a
  byte too: the boot script reports kbd_intr() calls on the VM's stderr.
- The VM is mpvm.micropython_binary() ($HOURGLASS_MICROPYTHON or the pinned one). A VM built by `hourglass
  frozen-vm` has the boot script and the esp32 module frozen in (on a board they are C in the firmware): it runs
  them from there, so that their bytecode is not on the heap.
- Networking is the unix port's own: UDP sockets on 127.0.0.1. Modules the board's firmware lacks are hidden
  (MISSING_BY_PORT: an nRF52840 has no socket, ssl, cryptolib, network, nor hashlib md5/sha1), so code takes
  the paths it takes on the board.
"""
from __future__ import annotations

import errno
import os
import pty
import re
import selectors
import signal
import subprocess
import sys
import termios
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path

from hourglass import boards, mpvm
from hourglass.common import UserError

HARD_RESET_EXIT = 90  # vboard_boot.py: machine.reset() exits the VM with this code
BOOT_SCRIPT = Path(__file__).with_name("vboard_boot.py")
FROZEN_BOOT = "import vboard_boot; vboard_boot._vboard_boot(globals()); del vboard_boot"  # mpvm.frozen_board()
RUN_MARK = b"\x00VBRUN\x00"    # the VM runs boot.py/main.py: SIGINT is safe
REPL_MARK = b"\x00VBREPL\x00"  # the REPL starts: Ctrl-C goes through as a byte
KBD_INTR_MARK = re.compile(rb"\x00VBKI(-?\d+)\x00")  # on the VM's stderr: micropython.kbd_intr(n) was called
# On the VM's stderr: boot.py/main.py ended with SystemExit(n). Under `micropython -i` the unix port would go
# on to its REPL, so the boot script reports it and waits; the supervisor ends the VM as if it had exited n.
EXIT_MARK = re.compile(rb"\x00VBEXIT(-?\d+)\x00")
# A traceback line of the boot script's own code (its import hook, the boot.py/main.py runner).
BOOT_FRAME = re.compile(rb'  File "[^"\n]*vboard_boot\.py", line \d+, in \S*\r?\n')
FRAME_START = b'  File "'
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
FRIENDLY_BANNER_END = b'Type "help()" for more information.\r\n>>> '
SOFT_REBOOT = b"MPY: soft reboot\r\n"
RAW_PASTE_REQUEST = b"\x05A\x01"
CTRL_A, CTRL_C, CTRL_D, CTRL_E = 0x01, 0x03, 0x04, 0x05
USER_BACKLOG = 256 * 1024  # unread output kept for the serial port; beyond it nobody is listening
FAULTS = ("raw-paste",)    # raw-paste: break raw-paste flow control, like a board link where raw-paste fails
# What vboard_boot.py's own objects (its import hook, file and os wrappers) keep on the VM's heap, added to the
# heap so that the program has what it would have on the board (test_vboard checks it against the bare VM).
BOOT_HEAP = 8 * 1024
# What the esp32 module of an ESP32 with an OTA table (vboard_esp32.py, run from source by the boot script)
# keeps on the VM's heap; a board has the module in its firmware. Added like BOOT_HEAP (test_suit_ota_vboard).
ESP32_OTA_HEAP = 8 * 1024
# The same two with the boot script and the esp32 module frozen into the VM (mpvm.frozen_board()): only their
# objects are on the heap, not their bytecode. Measured like BOOT_HEAP: ESP32_GENERIC's program has 3,200 B more
# than the bare VM at its budget with 8k, ESP32_GENERIC-OTA's 8,160 B more with 16k.
FROZEN_BOOT_HEAP = 5 * 1024
FROZEN_ESP32_OTA_HEAP = 3 * 1024

# What the board's firmware lacks that the unix VM has (shared/README.md "Boards"): the VM hides these modules.
# nRF52840: no IP network, hashlib has sha256 only, no cryptolib, no ssl.
MISSING_BY_PORT = {
    "esp32": (),
    "nrf": ("socket", "ssl", "cryptolib", "network", "hashlib.md5", "hashlib.sha1"),
}


@dataclass
class VmOutput:
    """What the supervisor does with a chunk of VM output (ReplTracker.output)."""
    to_user: bytes = b""
    to_vm: bytes = b""       # written to the VM ahead of anything queued (Ctrl-C, Ctrl-A)
    interrupt: bool = False  # send SIGINT: a Ctrl-C came while boot.py was starting
    ready: bool = False      # MicroPython runs boot.py/main.py or its REPL


class ReplTracker:
    """What a MicroPython VM's REPL is doing, followed from the bytes it prints and the bytes it is sent.

    Sans-IO: the supervisor feeds it the VM's output (output()), the user's input (input()) and the program's
    kbd_intr() calls (kbd_intr()), and does what the results say. It also turns the VM's output into what a
    board sends: markers removed, bare LF as CR LF, no boot-script traceback lines (while the console carries
    text; a program that disabled Ctrl-C uses it as a data line and its bytes pass unchanged).

    phase: booting (before boot.py) -> user (boot.py/main.py run) -> repl; mode: friendly | raw;
    busy: the REPL runs code (Ctrl-C must interrupt it). enter_raw: the VM came up after a soft reset in the
    raw REPL; its friendly banner is hidden and Ctrl-A sent, so the user sees what a board shows.
    """

    def __init__(self, enter_raw: bool = False):
        self.phase = "booting"
        self.mode = "friendly"
        self.busy = True
        self.entering_raw = enter_raw
        self.intr_char = CTRL_C  # micropython.kbd_intr(): -1 while a program uses the console as a data line
        self.pending_interrupt = False
        self._banner = bytearray()
        self._carry = b""
        self._tail = b""
        self._line_typed = False
        self._data_line = False  # the console carried data since the last text chunk: pass bytes unchanged
        self._last = 0            # the last byte sent to the user (a CR already before an LF?)
        self._held_line = b""     # a partial line that may be a boot-script traceback line

    # ---- VM -> user -----------------------------------------------------------------------------------

    def output(self, data: bytes) -> VmOutput:
        out = VmOutput()
        text = bytearray()
        buf = self._carry + data
        self._carry = b""
        while buf:
            if self.phase != "repl":
                i = buf.find(b"\x00")
                if i < 0:
                    text += self._emit(buf)
                    break
                text += self._emit(buf[:i])
                buf = buf[i:]
                if buf.startswith(RUN_MARK):
                    buf = buf[len(RUN_MARK):]
                    self.phase = "user"
                    out.ready = True
                    if self.pending_interrupt:
                        self.pending_interrupt = False
                        out.interrupt = True
                elif buf.startswith(REPL_MARK):
                    buf = buf[len(REPL_MARK):]
                    self.phase = "repl"
                    out.ready = True
                    self.busy = False
                    if self.pending_interrupt:  # the REPL reads it as a byte: cancels its input line
                        self.pending_interrupt = False
                        out.to_vm += bytes([CTRL_C])
                elif RUN_MARK.startswith(buf) or REPL_MARK.startswith(buf):
                    self._carry = buf  # a marker split across reads
                    break
                else:
                    text += self._emit(buf[:1])
                    buf = buf[1:]
                continue
            if self.entering_raw:
                self._banner += buf
                if self._banner.endswith(FRIENDLY_BANNER_END):
                    self._banner.clear()
                    self.entering_raw = False
                    out.to_vm += bytes([CTRL_A])
                break
            text += self._emit(buf)
            break
        out.to_user = self.cook(bytes(text))
        self._data_line = self.intr_char < 0
        return out

    def _emit(self, data: bytes) -> bytes:
        """Follows the REPL state through output on its way to the user."""
        if not data:
            return data
        self._tail = (self._tail + data)[-64:]
        tail = self._tail
        at_prompt = True
        if tail.endswith(RAW_BANNER):
            self.mode = "raw"
        elif tail.endswith(FRIENDLY_BANNER_END):
            # The REPL is up even if the boot script failed before its marker.
            self.mode, self.phase = "friendly", "repl"
        elif self.phase != "repl":
            at_prompt = False  # boot.py/main.py output, whatever it looks like
        elif self.mode == "raw":
            at_prompt = tail.endswith(b"\x04>")
        else:
            at_prompt = tail.endswith((b">>> ", b"... ", b"=== "))
        if at_prompt:
            self.busy = self._line_typed = False
            self.intr_char = CTRL_C  # the REPL enables Ctrl-C again for the next program it runs
        return data

    def cook(self, data: bytes) -> bytes:
        """VM text as a board sends it: CR LF line ends, no boot-script traceback lines."""
        data, self._held_line = self._held_line + data, b""
        if self._data_line or self.intr_char < 0:
            if data:
                self._last = data[-1]
            return data
        out = bytearray()
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n") and _may_become_boot_frame(line):
                self._held_line = line  # wait for the end of the line
                break
            if BOOT_FRAME.fullmatch(line):
                continue
            for c in line:
                if c == 10 and self._last != 13:
                    out.append(13)
                out.append(c)
                self._last = c
        return bytes(out)

    def kbd_intr(self, c: int) -> None:
        if c < 0 or self.intr_char < 0:
            self._data_line = True  # output up to now may be data: the next chunk passes unchanged
        self.intr_char = c

    # ---- user -> VM -----------------------------------------------------------------------------------

    def input(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes for the VM, whether to interrupt the running code with SIGINT) for the user's input."""
        interrupt = False
        out = bytearray()
        for c in data:
            if c == self.intr_char:
                if self.phase == "booting":
                    self.pending_interrupt = True
                    continue
                if self.phase == "user" or self.busy:
                    interrupt = True
                    continue
            if not self.busy and self.phase == "repl":
                self._follow_input(c)
            out.append(c)
        return bytes(out), interrupt

    def _follow_input(self, c: int) -> None:
        """Does this input byte, at an idle prompt, make the VM run code (or reset)?"""
        if self.mode == "raw":
            if c in (CTRL_D, CTRL_E):  # run the buffered code / raw-paste / soft reset
                self.busy = True
            return
        if self._tail.endswith(b"=== "):  # paste mode: only Ctrl-D runs the pasted code
            if c == CTRL_D:
                self.busy = True
        elif c in (10, 13):
            # Enter on an empty ">>> " line just prints a new prompt; after "... " it ends the block.
            if self._line_typed or self._tail.endswith(b"... "):
                self.busy = True
        elif c == CTRL_D:
            if not self._line_typed:  # soft reset
                self.busy = True
        elif c >= 0x20 or c == 0x09:
            self._line_typed = True


def _may_become_boot_frame(partial_line: bytes) -> bool:
    if FRAME_START.startswith(partial_line):
        return True
    return partial_line.startswith(FRAME_START) and (partial_line.count(b'"') < 2 or b"vboard_boot" in partial_line)


def load_board(name: str) -> boards.Board:
    try:
        return boards.load_board(name)
    except boards.BoardError as e:
        raise UserError(str(e)) from None


class VirtualBoard:
    """One virtual board. start() returns the pty path and serves it from a background thread."""

    def __init__(self, flash_dir: str | Path, board: str | boards.Board = "ESP32_GENERIC",
                 heap: str | None = None, faults: tuple[str, ...] = (), log=None):
        self.board = board if isinstance(board, boards.Board) else load_board(board)
        self.flash_dir = Path(flash_dir).resolve()
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        # The ROMFS partition's bytes, kept beside the filesystem (a board keeps them in their own flash).
        self.romfs_file = (self.flash_dir.with_name(self.flash_dir.name + ".romfs") if self.board.romfs_stock
                           else None)
        # An ESP32 with an OTA table: the esp32 module's partitions (vboard_esp32.py), beside the filesystem.
        self.ota_slots = tuple((p.name, p.size) for p in self.board.partitions if p.name.startswith("ota_")) \
            if self.board.port == "esp32" else ()
        self.ota_file = self.flash_dir.with_name(self.flash_dir.name + ".ota") if self.ota_slots else None
        romfs_k = -(-self.board.romfs_size // 1024) if self.romfs_file else 0
        if self.romfs_file and not self.romfs_file.exists():
            self.romfs_file.write_bytes(b"\xff" * self.board.romfs_size)  # erased flash
        frozen = mpvm.frozen_board()
        boot_heap = (FROZEN_BOOT_HEAP if frozen else BOOT_HEAP) + \
            ((FROZEN_ESP32_OTA_HEAP if frozen else ESP32_OTA_HEAP) if self.ota_slots else 0)
        self.heap = heap or f"{(mpvm.heap_bytes(self.board.vm_heap) + boot_heap) // 1024 + romfs_k}k"
        try:
            mpvm.heap_bytes(self.heap)
        except ValueError as e:
            raise UserError(str(e)) from None
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise UserError(f"unknown fault(s) {sorted(unknown)}; known: {', '.join(FAULTS)}")
        self.faults = frozenset(faults)
        self.log = log or (lambda message: None)
        self.port: str | None = None
        self.vm_starts = 0
        self.soft_resets = 0
        self.hard_resets = 0
        self.started_in: float | None = None  # seconds from start() to MicroPython running boot.py/REPL
        self.repl = ReplTracker()
        self._sel = selectors.DefaultSelector()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._ready = threading.Event()
        self._vm: subprocess.Popen | None = None
        self._vm_fd = -1
        self._err_fd = -1
        self._err_carry = b""
        self._to_user_buf = bytearray()
        self._to_vm_buf = bytearray()
        self._held_input = bytearray()
        self._hard_requested = False
        self._restart_at: float | None = None
        self._restart_args = (True, False)
        self._exit_code: int | None = None
        self._hard_boot = True  # the next VM start is a power-on or hard reset: the bootloader runs
        self._t_start = 0.0
        self._sigint_at: float | None = None

    @property
    def missing(self) -> tuple[str, ...]:
        return MISSING_BY_PORT.get(self.board.port, ())

    # ---- public API -------------------------------------------------------------------------------------

    def start(self, wait: float = 20.0) -> str:
        """Open the pty, boot the VM and serve in a background thread; returns the pty path."""
        self._open()
        self._thread = threading.Thread(target=self._loop, name=f"vboard-{self.board.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(wait):
            self.stop()
            raise UserError(f"the virtual board's VM did not start within {wait:g} s")
        return self.port

    def hard_reset(self) -> None:
        """Like pressing the board's reset button. Thread-safe; also safe from a signal handler."""
        os.write(self._ctl_w, b"H")

    def stop(self) -> None:
        self._stopping = True
        try:
            os.write(self._ctl_w, b"S")
        except OSError:
            pass
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(10)

    def is_serving(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> "VirtualBoard":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- setup ----------------------------------------------------------------------------------------

    def _open(self) -> None:
        self._t_start = time.monotonic()
        self._user_fd, self._user_slave = pty.openpty()
        # Raw from the start: an echoing slave would send the VM's output straight back to it.
        tty.setraw(self._user_slave)
        os.set_blocking(self._user_fd, False)
        self.port = os.ttyname(self._user_slave)
        self._ctl_r, self._ctl_w = os.pipe()
        os.set_blocking(self._ctl_w, False)
        self._sel.register(self._user_fd, selectors.EVENT_READ, "user")
        self._sel.register(self._ctl_r, selectors.EVENT_READ, "ctl")
        self._spawn_vm(run_main=True, enter_raw=False)

    def boot_args(self, run_main: bool) -> list[str]:
        """vboard_boot.py's arguments: FLASH MOUNT RUN_MAIN MISSING BLOCK_SIZE BLOCK_COUNT ROMFS ROMFS_SIZE OTA
        HARD (OTA: "-" or FILE,label=size,label=size for the esp32 module; HARD: "1" when the bootloader runs)."""
        b = self.board
        ota = ",".join([str(self.ota_file)] + [f"{n}={s}" for n, s in self.ota_slots]) if self.ota_file else "-"
        return [str(self.flash_dir), b.fs_mount, "1" if run_main else "0", ",".join(self.missing) or "-",
                str(b.fs_block_size), str(b.fs_block_count), str(self.romfs_file or "-"),
                str(b.romfs_size if self.romfs_file else 0), ota, "1" if self._hard_boot else "0"]

    def _spawn_vm(self, run_main: bool, enter_raw: bool) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)  # what pyserial would set: no echo, no CR/LF rewriting, Ctrl-C is a byte
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        # stderr is a pipe of its own: it carries the kbd_intr markers besides the VM's error output.
        err_r, err_w = os.pipe()
        # A VM with the boot script frozen in runs it from its firmware, as a board runs its own boot code.
        boot = ["-c", FROZEN_BOOT] if mpvm.frozen_board() else [str(BOOT_SCRIPT)]
        cmd = [mpvm.micropython_binary(), "-X", f"heapsize={self.heap}", "-i", *boot, *self.boot_args(run_main)]
        self._vm = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=err_w, close_fds=True,
                                    start_new_session=True, env=env, cwd=self.flash_dir)
        os.close(slave)
        os.close(err_w)
        os.set_blocking(err_r, False)
        self._err_fd = err_r
        self._err_carry = b""
        self._sel.register(err_r, selectors.EVENT_READ, "vmerr")
        os.set_blocking(master, False)
        self._vm_fd = master
        self._vm_started = time.monotonic()
        self._sel.register(master, selectors.EVENT_READ, "vm")
        self.vm_starts += 1
        self.repl = ReplTracker(enter_raw=enter_raw)
        self._sigint_at = None
        # Input that arrived while no VM ran goes to the new one (after Ctrl-A when it enters the raw REPL).
        self._to_vm_buf = self._held_input
        self._held_input = bytearray()
        self.log(f"VM start #{self.vm_starts} (pid {self._vm.pid}, heap {self.heap}, "
                 f"{'main.py' if run_main else 'no main.py'}, {'raw' if enter_raw else 'friendly'} REPL)")

    # ---- event loop -----------------------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            while not self._stopping:
                timeout = None
                if self._restart_at is not None:
                    timeout = max(0.0, self._restart_at - time.monotonic())
                for key, events in self._sel.select(timeout):
                    what = key.data
                    if what == "ctl":
                        self._on_control(os.read(self._ctl_r, 64))
                    elif what == "user":
                        if events & selectors.EVENT_READ:
                            self._read_user()
                        if events & selectors.EVENT_WRITE:
                            self._flush_user()
                    elif what == "vmerr" and key.fd == self._err_fd:
                        self._read_vm_stderr()
                    elif what == "vm" and key.fd == self._vm_fd:
                        if events & selectors.EVENT_READ:
                            self._read_vm()
                        if events & selectors.EVENT_WRITE and self._vm_fd >= 0:
                            self._flush_vm()
                    if self._stopping:
                        break
                if self._restart_at is not None and time.monotonic() >= self._restart_at and not self._stopping:
                    self._restart_at = None
                    self._spawn_vm(*self._restart_args)
                    self._flush_vm()
        finally:
            self._shutdown()

    def _on_control(self, commands: bytes) -> None:
        if b"S" in commands:
            self._stopping = True
            return
        if b"H" in commands:
            self.log("hard reset requested")
            self._hard_requested = True
            if self._vm is not None and self._vm.poll() is None:
                self._vm.kill()  # its end of output arrives as EIO on the VM pty, handled in _read_vm
            elif self._restart_at is not None:
                self._restart_args = (True, False)
                self._restart_at = time.monotonic()

    def _shutdown(self) -> None:
        if self._vm is not None and self._vm.poll() is None:
            self._vm.kill()
            self._vm.wait()
        for fd in (self._vm_fd, self._err_fd, self._user_fd, self._user_slave, self._ctl_r, self._ctl_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._vm_fd = -1
        self._sel.close()

    # ---- VM side --------------------------------------------------------------------------------------

    def _read_vm(self) -> None:
        # kbd_intr() markers arrive on stderr: the VM wrote them before the output that follows them, so
        # reading stderr first keeps the two in order (data-line bytes are never taken for text).
        if self._err_fd >= 0:
            self._read_vm_stderr()
        try:
            data = os.read(self._vm_fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b""
        if not data:  # every holder of the VM's pty slave is gone: the VM has ended
            self._on_vm_exit()
            return
        self._on_vm_data(data)

    def _read_vm_stderr(self) -> None:
        try:
            data = os.read(self._err_fd, 65536)
        except BlockingIOError:
            return
        if not data:
            self._sel.unregister(self._err_fd)
            os.close(self._err_fd)
            self._err_fd = -1
            return
        data = self._err_carry + data
        self._err_carry = b""
        for m in KBD_INTR_MARK.finditer(data):
            self.repl.kbd_intr(int(m.group(1)))
        data = KBD_INTR_MARK.sub(b"", data)
        for m in EXIT_MARK.finditer(data):
            self._exit_code = int(m.group(1))
            if self._vm is not None and self._vm.poll() is None:
                self._vm.kill()
        data = EXIT_MARK.sub(b"", data)
        cut = data.rfind(b"\x00")
        if cut >= 0:
            tail = data[cut:]
            if len(tail) < 14 and any(m.startswith(tail) or tail.startswith(m) for m in (b"\x00VBKI", b"\x00VBEXIT")):
                data, self._err_carry = data[:cut], tail  # a marker split across reads
        if data:
            self._to_user(self.repl.cook(data))

    def _on_vm_data(self, data: bytes) -> None:
        out = self.repl.output(data)
        if out.ready and not self._ready.is_set():
            self.started_in = time.monotonic() - self._t_start
            self._ready.set()
        if out.to_user:
            self._sigint_at = None  # the VM answered: another Ctrl-C may interrupt again
            self._to_user(out.to_user)
        if out.interrupt:
            self._interrupt()
        if out.to_vm:
            self._to_vm_buf[:0] = out.to_vm
            self._flush_vm()

    def _on_vm_exit(self) -> None:
        self._sel.unregister(self._vm_fd)
        os.close(self._vm_fd)
        self._vm_fd = -1
        rc = self._vm.wait()
        for _ in range(64):  # the rest of its stderr (a traceback that ended it); EOF now that it has exited
            if self._err_fd < 0:
                break
            self._read_vm_stderr()
        if self._exit_code is not None:  # main.py's sys.exit()/machine.reset(), reported on stderr
            rc, self._exit_code = self._exit_code, None
        uptime = time.monotonic() - self._vm_started
        if self._stopping:
            return
        if self._hard_requested or rc == HARD_RESET_EXIT:
            kind = "hard"
        elif rc < 0 and rc != -signal.SIGINT:
            kind = "hard"
            self._to_user(f"\r\nvboard: the VM ended with signal {-rc}; hard reset\r\n".encode())
        else:
            # Ctrl-D at an empty prompt, sys.exit(), machine.soft_reset(), or a Ctrl-C that met the VM
            # just back at its prompt (the unix port then dies of SIGINT): all soft resets.
            kind = "soft"
        self._hard_requested = False
        self._hard_boot = kind == "hard"
        if kind == "soft":
            self.soft_resets += 1
            raw = self.repl.mode == "raw"
            self._to_user(SOFT_REBOOT)
            self._restart_args = (not raw, raw)
        else:
            self.hard_resets += 1
            self._restart_args = (True, False)
        self.log(f"VM exit code {rc} after {uptime:.2f} s: {kind} reset")
        # A VM that keeps ending at once (main.py calling sys.exit()) restarts at a calm pace.
        self._restart_at = time.monotonic() + (0.5 if uptime < 0.3 else 0.0)
        self._held_input += self._to_vm_buf
        self._to_vm_buf = bytearray()

    def _to_vm(self, data: bytes) -> None:
        self._to_vm_buf += data
        self._flush_vm()

    def _flush_vm(self) -> None:
        if self._vm_fd < 0 or self.repl.entering_raw:
            return
        while self._to_vm_buf:
            try:
                n = os.write(self._vm_fd, self._to_vm_buf)
            except BlockingIOError:
                break
            except OSError:
                return  # the VM is going away; _read_vm sees it
            del self._to_vm_buf[:n]
        self._sel.modify(self._vm_fd, selectors.EVENT_READ | (selectors.EVENT_WRITE if self._to_vm_buf else 0),
                         "vm")

    def _interrupt(self) -> None:
        if self._sigint_at is not None and time.monotonic() - self._sigint_at < 0.5:
            return  # one SIGINT at a time: a second one could meet the VM back at its prompt
        self._sigint_at = time.monotonic()
        try:
            os.kill(self._vm.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    # ---- user side ------------------------------------------------------------------------------------

    def _read_user(self) -> None:
        try:
            data = os.read(self._user_fd, 65536)
        except (BlockingIOError, OSError):
            return
        if not data:
            return
        if "raw-paste" in self.faults and self.repl.mode == "raw" and RAW_PASTE_REQUEST in data:
            # Like a link that corrupts raw-paste flow control: accept, then answer a stray byte where
            # the window acknowledgement should be. The VM never sees the request.
            data = data.replace(RAW_PASTE_REQUEST, b"")
            self._to_user(b"R\x01\x80\x00?")
        if self._vm_fd < 0:  # between two VMs: the next one reads it
            self._held_input += data
            return
        data, interrupt = self.repl.input(data)
        if interrupt:
            self._interrupt()
        if data:
            self._to_vm(data)

    def _to_user(self, data: bytes) -> None:
        self._to_user_buf += data
        if len(self._to_user_buf) > USER_BACKLOG:
            # Nobody reads the port: drop what is stale, as a UART with no listener does.
            del self._to_user_buf[:-USER_BACKLOG // 2]
            termios.tcflush(self._user_slave, termios.TCIFLUSH)
        self._flush_user()

    def _flush_user(self) -> None:
        while self._to_user_buf:
            try:
                n = os.write(self._user_fd, self._to_user_buf)
            except BlockingIOError:
                break
            del self._to_user_buf[:n]
        self._sel.modify(self._user_fd,
                         selectors.EVENT_READ | (selectors.EVENT_WRITE if self._to_user_buf else 0), "user")


# ---- command line -----------------------------------------------------------------------------------------

def register(subparsers) -> None:
    p = subparsers.add_parser(
        "vboard", help="run the MicroPython VM as a virtual board with its REPL on a pty",
        description="Start the MicroPython VM as a board: its REPL on a pty for mpremote/ampy, a directory "
                    "as its flash, its heap limited to the board's budget (x2 on the 64-bit VM). "
                    "SIGHUP hard-resets it; Ctrl-C or SIGTERM stops it.")
    p.add_argument("--board", default="ESP32_GENERIC", help="board whose budget and filesystem to use "
                   "(default: ESP32_GENERIC)")
    p.add_argument("--flash", required=True, type=Path, help="directory that is the board's filesystem")
    p.add_argument("--heap", default=None, help="VM heap instead of 2x the board's budget, e.g. 256k")
    p.add_argument("--port-file", type=Path, default=None, help="write the pty path to this file once "
                   "the board is at its REPL")
    p.add_argument("--fault", action="append", default=[], choices=FAULTS,
                   help="misbehave on purpose (raw-paste: corrupt raw-paste flow control)")
    p.add_argument("-v", "--verbose", action="store_true", help="log VM starts and resets on stderr")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    def log(message: str) -> None:
        print(f"vboard: {message}", file=sys.stderr, flush=True)

    if args.flash.exists() and not args.flash.is_dir():
        raise UserError(f"--flash {args.flash}: not a directory")
    board = VirtualBoard(args.flash, args.board, heap=args.heap, faults=tuple(args.fault),
                         log=log if args.verbose else None)
    b = board.board
    romfs = f", ROMFS {b.romfs_size // 1024} KiB in {board.romfs_file}" if board.romfs_file else ""
    print(f"vboard: {b.name}: flash {board.flash_dir} at {b.fs_mount} ({b.fs_size // 1024} KiB){romfs}, "
          f"heap {board.heap} on the VM (board {b.python_heap // 1024} KiB x2"
          + (" + the ROMFS partition" if board.romfs_file else "") + f", from {b.folder / 'board.toml'})"
          + (f"; without {', '.join(board.missing)}" if board.missing else ""), file=sys.stderr, flush=True)
    signal.signal(signal.SIGHUP, lambda *_: board.hard_reset())
    signal.signal(signal.SIGTERM, lambda *_: board.stop())
    try:
        port = board.start()
        print(port, flush=True)
        print(f"vboard: ready in {board.started_in:.2f} s; try: mpremote connect {port} resume repl",
              file=sys.stderr, flush=True)
        if args.port_file:
            tmp = args.port_file.with_name(args.port_file.name + ".tmp")
            tmp.write_text(port + "\n")
            tmp.replace(args.port_file)
        while board.is_serving():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
        if args.port_file:
            args.port_file.unlink(missing_ok=True)
    return 0
