"""`hourglass vboard`: the real MicroPython VM as a virtual board, its REPL on a pty.

    user (mpremote, ampy, a terminal) <-> pty "serial port" <-> supervisor <-> pty <-> micropython VM

- The flash directory is the board's filesystem at the board's mount point ("/" on ESP32, "/flash" on
  nRF52840); cwd and sys.path are the board's (vboard_boot.py runs first in the VM and sets them up).
- The heap is the board's Python heap counted twice, the VM being 64-bit (boards/<NAME>/board.toml budget,
  or FALLBACK_BOARDS when the board folder is absent).
- Soft reset (Ctrl-D at an empty prompt, sys.exit(), machine.soft_reset()) makes the bare VM exit; the
  supervisor prints "MPY: soft reboot" and starts a fresh VM in the REPL mode it was in, running boot.py,
  and main.py after a friendly-REPL reset only, as boards do. machine.reset() (or SIGHUP to `hourglass
  vboard`, or VirtualBoard.hard_reset()) is a hard reset: fresh VM, boot.py and main.py, friendly REPL.
  The pty stays the same across resets and files in the flash directory stay as they are.
- Ctrl-C: the unix port has no serial interrupt character, it takes SIGINT, and SIGINT at its prompt ends it.
  The supervisor follows the REPL state from the VM's output and sends SIGINT only while code runs; at a
  prompt Ctrl-C goes through as a byte, like on a board. While the program has disabled it with
  micropython.kbd_intr(-1) (mpremote `mount` transfers, coap.serial on the console) it is a byte too: the
  boot script reports kbd_intr() calls on the VM's stderr.
- Networking is the unix port's own: UDP sockets on 127.0.0.1. Modules the board's firmware lacks are hidden
  (MISSING_BY_PORT: an nRF52840 has no socket, ssl, cryptolib, network, nor hashlib md5/sha1), so code takes
  the paths it takes on the board.
"""
from __future__ import annotations

import argparse
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

from hourglass import mpvm

HARD_RESET_EXIT = 90  # vboard_boot.py: machine.reset() exits the VM with this code
BOOT_SCRIPT = Path(__file__).with_name("vboard_boot.py")
RUN_MARK = b"\x00VBRUN\x00"    # the VM runs boot.py/main.py: SIGINT is safe
REPL_MARK = b"\x00VBREPL\x00"  # the REPL starts: Ctrl-C goes through as a byte
KBD_INTR_MARK = re.compile(rb"\x00VBKI(-?\d+)\x00")  # on the VM's stderr: micropython.kbd_intr(n) was called
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
FRIENDLY_BANNER_END = b'Type "help()" for more information.\r\n>>> '
SOFT_REBOOT = b"MPY: soft reboot\r\n"
RAW_PASTE_REQUEST = b"\x05A\x01"
CTRL_A, CTRL_C, CTRL_D, CTRL_E = 0x01, 0x03, 0x04, 0x05
USER_BACKLOG = 256 * 1024  # unread output kept for the serial port; beyond it nobody is listening
FAULTS = ("raw-paste",)    # raw-paste: break raw-paste flow control, like a board link where raw-paste fails

# What the board's firmware lacks that the unix VM has (shared/README.md "Boards"): the VM hides these modules.
# nRF52840: no IP network, hashlib has sha256 only, no cryptolib, no ssl.
MISSING_BY_PORT = {
    "esp32": (),
    "nrf": ("socket", "ssl", "cryptolib", "network", "hashlib.md5", "hashlib.sha1"),
}

# Board data when boards/<NAME>/board.toml is absent: filesystem mount point and the board's Python heap
# (shared/README.md "Boards": ESP32 56 KiB initial, S3/C3 64 KiB, nRF52840 about 200 KiB).
FALLBACK_BOARDS = {
    "ESP32_GENERIC": ("esp32", "/", 56 * 1024),
    "ESP32_GENERIC_OTA": ("esp32", "/", 56 * 1024),
    "ESP32_GENERIC_S3": ("esp32", "/", 64 * 1024),
    "ESP32_GENERIC_C3": ("esp32", "/", 64 * 1024),
    "PCA10056": ("nrf", "/flash", 200 * 1024),
    "PCA10059": ("nrf", "/flash", 200 * 1024),
    "SEEED_XIAO_NRF52": ("nrf", "/flash", 200 * 1024),
    "ARDUINO_NANO_33_BLE_SENSE": ("nrf", "/flash", 200 * 1024),
}


@dataclass(frozen=True)
class BoardProfile:
    name: str
    port: str         # MicroPython port: esp32 | nrf
    fs_mount: str
    python_heap: int  # bytes on the (32-bit) board
    source: str       # where the numbers come from

    @property
    def missing(self) -> tuple[str, ...]:
        return MISSING_BY_PORT.get(self.port, ())

    @property
    def vm_heap(self) -> str:
        return f"{2 * self.python_heap // 1024}k"


def board_profile(name: str) -> BoardProfile:
    """The board's data from boards/<NAME>/board.toml, else from FALLBACK_BOARDS."""
    from hourglass import boards

    if (boards.boards_dir() / name / "board.toml").is_file():
        b = boards.load_board(name)
        return BoardProfile(b.name, b.port, b.fs_mount, b.python_heap, str(b.folder / "board.toml"))
    if name in FALLBACK_BOARDS:
        port, mount, heap = FALLBACK_BOARDS[name]
        return BoardProfile(name, port, mount, heap, "hourglass.vboard.FALLBACK_BOARDS")
    known = sorted(set(FALLBACK_BOARDS) | set(boards.board_names()
                                              if boards.boards_dir().is_dir() else []))
    raise ValueError(f"unknown board {name!r} (known: {', '.join(known)})")


class VirtualBoard:
    """One virtual board. start() returns the pty path and serves it from a background thread."""

    def __init__(self, flash_dir: str | Path, board: str = "ESP32_GENERIC", heap: str | None = None,
                 faults: tuple[str, ...] = (), log=None):
        self.profile = board_profile(board)
        self.flash_dir = Path(flash_dir).resolve()
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        self.heap = heap or self.profile.vm_heap
        mpvm.heap_bytes(self.heap)  # validates
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {', '.join(FAULTS)}")
        self.faults = frozenset(faults)
        self.log = log or (lambda message: None)
        self.port: str | None = None
        self.vm_starts = 0
        self.soft_resets = 0
        self.hard_resets = 0
        self.started_in: float | None = None  # seconds from start() to MicroPython running boot.py/REPL
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
        self._t_start = 0.0

    # ---- public API -------------------------------------------------------------------------------------

    def start(self, wait: float = 20.0) -> str:
        """Open the pty, boot the VM and serve in a background thread; returns the pty path."""
        self._open()
        self._thread = threading.Thread(target=self._loop, name=f"vboard-{self.profile.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(wait):
            raise RuntimeError(f"the virtual board's VM did not start within {wait} s")
        return self.port

    def serve(self) -> None:
        """Open the pty, boot the VM and serve in this thread until stop()."""
        self._open()
        self._loop()

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

    def _spawn_vm(self, run_main: bool, enter_raw: bool) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)  # what pyserial would set: no echo, no CR/LF rewriting, Ctrl-C is a byte
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        # stderr is a pipe of its own: it carries the kbd_intr markers besides the VM's error output.
        err_r, err_w = os.pipe()
        cmd = [mpvm.micropython_binary(), "-X", f"heapsize={self.heap}", "-i", str(BOOT_SCRIPT),
               str(self.flash_dir), self.profile.fs_mount, "1" if run_main else "0",
               ",".join(self.profile.missing) or "-"]
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
        # REPL state, followed from the VM's output.
        self._phase = "booting"  # booting -> user (boot.py/main.py) -> repl
        self._mode = "friendly"
        self._busy = True
        self._entering_raw = enter_raw
        self._banner = bytearray()
        self._carry = b""
        self._tail = b""
        self._line_typed = False
        self._intr_char = CTRL_C  # micropython.kbd_intr(): -1 while a program uses the console as a data line
        self._pending_interrupt = False
        self._sigint_at: float | None = None
        self._to_vm_buf.clear()
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
            self._intr_char = int(m.group(1))
        data = KBD_INTR_MARK.sub(b"", data)
        cut = data.rfind(b"\x00")
        if cut >= 0:
            tail = data[cut:]
            if len(tail) < 12 and (b"\x00VBKI".startswith(tail) or tail.startswith(b"\x00VBKI")):
                data, self._err_carry = data[:cut], tail  # a marker split across reads
        if data:
            self._to_user(data)

    def _on_vm_data(self, data: bytes) -> None:
        buf = self._carry + data
        self._carry = b""
        while buf:
            if self._phase != "repl":
                i = buf.find(b"\x00")
                if i < 0:
                    self._emit(buf)
                    return
                self._emit(buf[:i])
                buf = buf[i:]
                if buf.startswith(RUN_MARK):
                    buf = buf[len(RUN_MARK):]
                    self._phase = "user"
                    self._set_ready()
                    if self._pending_interrupt:
                        self._pending_interrupt = False
                        self._interrupt()
                elif buf.startswith(REPL_MARK):
                    buf = buf[len(REPL_MARK):]
                    self._phase = "repl"
                    self._set_ready()
                    self._busy = False
                    if self._pending_interrupt:  # the REPL reads it as a byte: cancels its input line
                        self._pending_interrupt = False
                        self._to_vm(bytes([CTRL_C]))
                elif RUN_MARK.startswith(buf) or REPL_MARK.startswith(buf):
                    self._carry = buf  # a marker split across reads
                    return
                else:
                    self._emit(buf[:1])
                    buf = buf[1:]
                continue
            if self._entering_raw:
                # Soft reset in the raw REPL: the new VM's REPL starts friendly; switch it to raw and hide
                # the friendly banner, so the port shows what a board shows: "soft reboot", then "raw REPL".
                self._banner += buf
                if self._banner.endswith(FRIENDLY_BANNER_END):
                    self._banner.clear()
                    self._entering_raw = False
                    self._to_vm(bytes([CTRL_A]) + bytes(self._held_input))
                    self._held_input.clear()
                return
            self._emit(buf)
            return

    def _set_ready(self) -> None:
        if not self._ready.is_set():
            self.started_in = time.monotonic() - self._t_start
            self._ready.set()

    def _emit(self, data: bytes) -> None:
        """VM output towards the port; follows the REPL state on the way."""
        if not data:
            return
        self._sigint_at = None  # the VM answered: another Ctrl-C may interrupt again
        self._tail = (self._tail + data)[-64:]
        tail = self._tail
        at_prompt = True
        if tail.endswith(RAW_BANNER):
            self._mode = "raw"
        elif tail.endswith(FRIENDLY_BANNER_END):
            # The REPL is up even if the boot script failed before its marker.
            self._mode, self._phase = "friendly", "repl"
        elif self._phase != "repl":
            at_prompt = False  # boot.py/main.py output, whatever it looks like
        elif self._mode == "raw":
            at_prompt = tail.endswith(b"\x04>")
        else:
            at_prompt = tail.endswith((b">>> ", b"... ", b"=== "))
        if at_prompt:
            self._busy = self._line_typed = False
            self._intr_char = CTRL_C  # the REPL enables Ctrl-C again for the next program it runs
        self._to_user(data)

    def _on_vm_exit(self) -> None:
        self._sel.unregister(self._vm_fd)
        os.close(self._vm_fd)
        self._vm_fd = -1
        rc = self._vm.wait()
        for _ in range(64):  # the rest of its stderr (a traceback that ended it); EOF now that it has exited
            if self._err_fd < 0:
                break
            self._read_vm_stderr()
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
        if kind == "soft":
            self.soft_resets += 1
            raw = self._mode == "raw"
            self._to_user(SOFT_REBOOT)
            self._restart_args = (not raw, raw)
        else:
            self.hard_resets += 1
            self._restart_args = (True, False)
        self.log(f"VM exit code {rc} after {uptime:.2f} s: {kind} reset")
        # A VM that keeps ending at once (main.py calling sys.exit()) restarts at a calm pace.
        self._restart_at = time.monotonic() + (0.5 if uptime < 0.3 else 0.0)
        self._held_input += self._to_vm_buf
        self._to_vm_buf.clear()

    def _to_vm(self, data: bytes) -> None:
        self._to_vm_buf += data
        self._flush_vm()

    def _flush_vm(self) -> None:
        if self._vm_fd < 0 or self._entering_raw:
            return
        if self._held_input:
            self._to_vm_buf[:0] = self._held_input
            self._held_input.clear()
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
        if "raw-paste" in self.faults and self._mode == "raw" and RAW_PASTE_REQUEST in data:
            # Like a link that corrupts raw-paste flow control: accept, then answer a stray byte where
            # the window acknowledgement should be. The VM never sees the request.
            data = data.replace(RAW_PASTE_REQUEST, b"")
            self._to_user(b"R\x01\x80\x00?")
        vm_running = self._vm_fd >= 0
        out = bytearray()
        for c in data:
            if c == self._intr_char and vm_running:
                if self._phase == "booting":
                    self._pending_interrupt = True
                    continue
                if self._phase == "user" or self._busy:
                    self._interrupt()
                    continue
            if not self._busy and self._phase == "repl":
                self._follow_input(c)
            out.append(c)
        if not out:
            return
        if not vm_running or self._entering_raw:
            self._held_input += out
        else:
            self._to_vm(bytes(out))

    def _follow_input(self, c: int) -> None:
        """Does this input byte, at an idle prompt, make the VM run code (or reset)?"""
        if self._mode == "raw":
            if c in (CTRL_D, CTRL_E):  # run the buffered code / raw-paste / soft reset
                self._busy = True
            return
        if self._tail.endswith(b"=== "):  # paste mode: only Ctrl-D runs the pasted code
            if c == CTRL_D:
                self._busy = True
        elif c in (10, 13):
            # Enter on an empty ">>> " line just prints a new prompt; after "... " it ends the block.
            if self._line_typed or self._tail.endswith(b"... "):
                self._busy = True
        elif c == CTRL_D:
            if not self._line_typed:  # soft reset
                self._busy = True
        elif c >= 0x20 or c == 0x09:
            self._line_typed = True

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

    try:
        board = VirtualBoard(args.flash, args.board, heap=args.heap, faults=tuple(args.fault),
                             log=log if args.verbose else None)
    except ValueError as e:
        print(f"vboard: {e}", file=sys.stderr)
        return 2
    prof = board.profile
    print(f"vboard: {prof.name}: flash {board.flash_dir} at {prof.fs_mount}, heap {board.heap} on the VM "
          f"(board {prof.python_heap // 1024} KiB x2, from {prof.source})"
          + (f"; without {', '.join(prof.missing)}" if prof.missing else ""), file=sys.stderr, flush=True)
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
        while board._thread.is_alive():
            board._thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
        if args.port_file:
            args.port_file.unlink(missing_ok=True)
    return 0
