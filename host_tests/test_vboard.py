"""The virtual board: the real MicroPython VM behind a pty, driven by the real mpremote (and pyserial)."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
import serial

from hourglass import boards, vboard
from hourglass.common import UserError, find_executable
from hourglass.vboard import CTRL_C, CTRL_D, FRIENDLY_BANNER_END, RAW_BANNER, REPL_MARK, RUN_MARK, ReplTracker
from udp_probe import request_until_reply

MPREMOTE = find_executable("mpremote")


def mpremote(port: str, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([MPREMOTE, "connect", port, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"mpremote {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def esp32(tmp_path):
    with vboard.VirtualBoard(tmp_path / "flash", "ESP32_GENERIC") as vb:
        yield vb


def test_board_facts_come_from_board_toml(tmp_path):
    esp = vboard.VirtualBoard(tmp_path / "esp", "ESP32_GENERIC")
    nrf = vboard.VirtualBoard(tmp_path / "nrf", "PCA10059")
    assert esp.board == boards.load_board("ESP32_GENERIC") and nrf.board == boards.load_board("PCA10059")
    assert not hasattr(vboard, "FALLBACK_BOARDS") and not hasattr(vboard, "board_profile")
    # The VM heap is Board.vm_heap (the one place the "x2" lives), plus the ROMFS partition where there is one.
    boot = vboard.FROZEN_BOOT_HEAP if vboard.mpvm.frozen_board() else vboard.BOOT_HEAP  # HOURGLASS_MICROPYTHON
    for vb in (esp, nrf):
        romfs = -(-vb.board.romfs_size // 1024) * 1024 if vb.board.romfs_stock else 0
        assert vboard.mpvm.heap_bytes(vb.heap) == vboard.mpvm.heap_bytes(vb.board.vm_heap) + romfs + boot
    assert nrf.romfs_file == tmp_path / "nrf.romfs"
    assert nrf.missing and not esp.missing
    with pytest.raises(UserError, match="unknown board"):
        vboard.VirtualBoard(tmp_path / "x", "NO_SUCH_BOARD")


def test_exec_sees_a_board_layout_and_heap(esp32):
    probe = "import os, sys, gc; gc.collect(); print(os.getcwd(), sys.path, gc.mem_free())"
    out = mpremote(esp32.port, "resume", "exec", probe).stdout.split()
    assert out[0] == "/"
    assert "'/lib']" in out[-2]
    # The program has the heap it has on the bare VM at the board's budget: the boot script's objects and the
    # ROMFS partition's bytes do not come out of it.
    bare = vboard.mpvm.run(["-c", probe], heap=esp32.board.vm_heap).stdout.split()
    assert abs(int(out[-1]) - int(bare[-1])) < 3 * 1024, (out[-1], bare[-1])


def test_heap_budget_is_enforced_per_board(tmp_path):
    alloc = "b = bytearray(180 * 1024); print('allocated', len(b))"
    with vboard.VirtualBoard(tmp_path / "esp", "ESP32_GENERIC") as esp:
        p = mpremote(esp.port, "resume", "exec", alloc, check=False)
        assert "MemoryError" in p.stdout + p.stderr
    with vboard.VirtualBoard(tmp_path / "nrf", "PCA10056") as nrf:
        assert "allocated 184320" in mpremote(nrf.port, "resume", "exec", alloc).stdout


def test_fs_cp_is_byte_identical_and_ls_lists_it(esp32, tmp_path):
    payload = bytes(range(256)) * 40 + b"\x03\x04\x01\x18 end"  # control bytes must cross the relay intact
    src = tmp_path / "blob.bin"
    src.write_bytes(payload)
    mpremote(esp32.port, "resume", "fs", "mkdir", ":lib", "+", "fs", "cp", str(src), ":lib/blob.bin")
    assert (esp32.flash_dir / "lib" / "blob.bin").read_bytes() == payload
    listing = mpremote(esp32.port, "resume", "fs", "ls", ":lib").stdout
    assert "blob.bin" in listing
    back = tmp_path / "back.bin"
    mpremote(esp32.port, "resume", "fs", "cp", ":lib/blob.bin", str(back))
    assert back.read_bytes() == payload
    digest = mpremote(esp32.port, "resume", "fs", "sha256sum", ":lib/blob.bin").stdout.split()[-1]
    import hashlib
    assert digest == hashlib.sha256(payload).hexdigest()


def test_lib_on_flash_is_importable_after_soft_reset(esp32):
    (esp32.flash_dir / "lib").mkdir()
    (esp32.flash_dir / "lib" / "greet.py").write_text("def hello():\n    return 'hello from /lib'\n")
    mpremote(esp32.port, "resume", "exec", "marker = 1")
    # Without `resume` mpremote soft-resets first: the new VM has no `marker`, the files are still there.
    out = mpremote(esp32.port, "exec", "import greet; print(greet.hello()); print('marker' in globals())").stdout
    assert "hello from /lib" in out and "False" in out
    assert esp32.soft_resets == 1


def test_mount_runs_host_files_on_the_board(esp32, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "hostmod.py").write_bytes(b"DATA = " + repr(bytes(range(256))).encode() + b"\n")
    out = mpremote(esp32.port, "resume", "mount", str(host), "exec",
                   "import os, hostmod; print(os.getcwd(), len(hostmod.DATA), hostmod.DATA[3])").stdout
    assert "/remote 256 3" in out


def test_boot_and_main_run_like_on_a_board(esp32):
    flash = esp32.flash_dir
    (flash / "boot.py").write_text("print('boot.py ran')\n")
    (flash / "main.py").write_text("with open('boots.txt', 'a') as f:\n    f.write('x')\n")
    # Soft reset in the raw REPL: boot.py runs, main.py does not (as on a board).
    out = mpremote(esp32.port, "exec", "print('ok')").stdout
    assert "ok" in out
    assert not (flash / "boots.txt").exists()
    # Hard reset (mpremote `reset` calls machine.reset()): a fresh VM runs boot.py and main.py.
    mpremote(esp32.port, "resume", "reset")
    deadline = time.monotonic() + 20
    while not (flash / "boots.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (flash / "boots.txt").read_text() == "x"
    assert esp32.hard_resets == 1
    esp32.hard_reset()
    deadline = time.monotonic() + 20
    while (flash / "boots.txt").read_text() != "xx" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (flash / "boots.txt").read_text() == "xx"


def test_ctrl_c_interrupts_a_running_main(tmp_path):
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "main.py").write_text("import time\nprint('app running')\nwhile True:\n    time.sleep_ms(5)\n")
    with vboard.VirtualBoard(flash, "ESP32_GENERIC") as vb:
        # mpremote's Ctrl-C stops main.py (KeyboardInterrupt), then the raw REPL runs the command.
        out = mpremote(vb.port, "resume", "exec", "print('interrupted and running', 6 * 7)").stdout
        assert "interrupted and running 42" in out


def test_friendly_repl_and_ctrl_d_soft_reboot(esp32):
    with serial.Serial(esp32.port, 115200, timeout=5) as s:
        s.write(b"\r\x03")
        time.sleep(0.3)
        s.reset_input_buffer()
        s.write(b"x = 6 * 7\r")
        s.write(b"print('x is', x)\r")
        assert s.read_until(b"x is 42").endswith(b"x is 42")
        s.read_until(b">>> ")
        s.write(b"\x04")
        after = s.read_until(b'for more information.\r\n>>> ')
        assert b"MPY: soft reboot\r\n" in after
        s.write(b"print('x' in globals(), 'after')\r")
        assert s.read_until(b"False after").endswith(b"False after")
    assert esp32.soft_resets == 1


def test_nrf_board_filesystem_is_at_flash(tmp_path):
    with vboard.VirtualBoard(tmp_path / "flash", "PCA10059") as nrf:
        src = tmp_path / "cfg.json"
        src.write_text('{"a": 1}')
        mpremote(nrf.port, "resume", "fs", "cp", str(src), ":/flash/cfg.json")
        out = mpremote(nrf.port, "resume", "exec", "import os, sys; print(os.getcwd(), os.listdir('/'), "
                       "open('cfg.json').read(), sys.path)").stdout
        assert out.startswith("/flash ['flash'] {\"a\": 1}")
        assert "'/flash/lib'" in out
        assert (nrf.flash_dir / "cfg.json").read_text() == '{"a": 1}'


def test_nrf_board_lacks_what_its_firmware_lacks(tmp_path):
    probe = ("import hashlib\nprint(hashlib.sha256(b'abc').digest()[:2])\n"
             "print(hasattr(hashlib, 'md5'), hasattr(hashlib, 'sha1'))\n"
             "for m in ('socket', 'ssl', 'cryptolib', 'json', 'asyncio'):\n"
             "    try:\n        __import__(m)\n        print('have', m)\n"
             "    except ImportError:\n        print('lacks', m)\n")
    with vboard.VirtualBoard(tmp_path / "nrf", "PCA10059") as nrf:
        out = mpremote(nrf.port, "exec", probe).stdout.split("\n")
    assert out[0].strip() == "b'\\xbax'" and out[1].strip() == "False False"
    assert [line.strip() for line in out[2:7]] == ["lacks socket", "lacks ssl", "lacks cryptolib", "have json",
                                                   "have asyncio"]
    with vboard.VirtualBoard(tmp_path / "esp", "ESP32_GENERIC") as esp:
        out = mpremote(esp.port, "exec", probe).stdout.split("\n")
    assert out[1].strip() == "True True" and "have socket" in out[2] and "have cryptolib" in out[4]


def test_udp_on_localhost_from_the_board(esp32):
    host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host.bind(("127.0.0.1", 0))
    host.settimeout(10)
    port = host.getsockname()[1]
    code = (f"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"a = socket.getaddrinfo('127.0.0.1', {port})[0][-1]; s.sendto(b'ping from board', a); "
            f"print(s.recv(64))")
    proc = subprocess.Popen([MPREMOTE, "connect", esp32.port, "resume", "exec", code],
                            stdout=subprocess.PIPE, text=True)
    try:
        data, addr = host.recvfrom(64)
        assert data == b"ping from board"
        host.sendto(b"pong", addr)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
        host.close()
    assert "b'pong'" in out


def test_raw_paste_fault_makes_mpremote_fail(tmp_path):
    with vboard.VirtualBoard(tmp_path / "flash", "ESP32_GENERIC", faults=("raw-paste",)) as vb:
        p = mpremote(vb.port, "resume", "exec", "print(1)", check=False, timeout=60)
        assert p.returncode != 0


def test_cli_port_file_sighup_and_sigterm(tmp_path):
    port_file = tmp_path / "port"
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "main.py").write_text("with open('boots.txt', 'a') as f:\n    f.write('x')\n")
    proc = subprocess.Popen([sys.executable, "-m", "hourglass.cli", "vboard", "--board", "PCA10056",
                             "--flash", str(flash), "--port-file", str(port_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        port = port_file.read_text().strip()
        assert port.startswith("/dev/")
        assert mpremote(port, "resume", "exec", "print(1 + 1)").stdout.strip() == "2"
        proc.send_signal(signal.SIGHUP)
        while (flash / "boots.txt").read_text() != "xx" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (flash / "boots.txt").read_text() == "xx"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert out.strip() == port
    assert f"heap {vboard.VirtualBoard(flash, 'PCA10056').heap} on the VM" in err
    assert not port_file.exists()


def test_cli_user_errors_are_one_line(tmp_path):
    def vb(*args):
        return subprocess.run([sys.executable, "-m", "hourglass.cli", "vboard", *args], capture_output=True,
                              text=True, timeout=30)

    p = vb("--board", "NOPE", "--flash", str(tmp_path))
    assert p.returncode == 1 and p.stderr.startswith("hourglass vboard: unknown board 'NOPE'"), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    (tmp_path / "file").write_text("")
    p = vb("--flash", str(tmp_path / "file"))
    assert p.returncode == 1 and p.stderr.strip() == f"hourglass vboard: --flash {tmp_path / 'file'}: not a directory"
    p = vb("--flash", str(tmp_path), "--heap", "lots")
    assert p.returncode == 1 and p.stderr.strip() == "hourglass vboard: bad heap size 'lots'"


SERIAL_APP = '''
import asyncio
from coap.serial import SerialTransport
from coap.server import Server


async def main():
    s = Server(SerialTransport())
    s.route("/echo", post=lambda req: bytes(req.payload))
    s.start()
    print("serial app ready")
    while True:
        await asyncio.sleep(1)

asyncio.run(main())
'''


def test_serial_coap_on_the_board_pty_through_the_gateway(tmp_path):
    """An nRF52840 talks CoAP over its serial console: the app's frames cross the vboard pty byte for byte
    (0x03 included: coap.serial disables Ctrl-C with micropython.kbd_intr(-1), which the supervisor follows)."""
    import shutil
    from hourglass import mpvm

    flash = tmp_path / "flash"
    for pkg in mpvm.lib_package_dirs():
        shutil.copytree(pkg, flash / "lib", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("manifest.py", "package.json", "__pycache__"))
    (flash / "main.py").write_text(SERIAL_APP)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    udp_port = probe.getsockname()[1]
    probe.close()
    with vboard.VirtualBoard(flash, "PCA10056") as vb:
        gw = subprocess.Popen([sys.executable, "-m", "hourglass.cli", "gateway", "--port", vb.port, "-l",
                               f"127.0.0.1:{udp_port}", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        payload = bytes([3, 4, 1, 2, 0xC0, 0xDB, 3]) + b" ctrl bytes in a CoAP payload"
        # CON POST mid 0x0102, token 0x77, Uri-Path "echo", payload marker
        request = bytes([0x41, 0x02, 0x01, 0x02, 0x77, 0xB4]) + b"echo" + b"\xff" + payload
        try:
            reply = request_until_reply(request, udp_port, 40)
        finally:
            gw.terminate()
            gw.wait(10)
        assert vb.vm_starts == 1  # no Ctrl-C in the frames turned into a SIGINT that ended the app
    assert reply is not None, "no answer through the gateway"
    assert reply[1] == 0x45 and reply[4] == 0x77
    assert reply[reply.index(b"\xff") + 1:] == payload


# ---- ReplTracker: the REPL state machine, sans-IO ----------------------------------------------------------

BANNER = b'MicroPython v1.29.0 on 2026-08-29; linux\r\n' + FRIENDLY_BANNER_END


def booted(enter_raw=False) -> ReplTracker:
    t = ReplTracker(enter_raw=enter_raw)
    out = t.output(RUN_MARK + b"boot.py says hi\n" + REPL_MARK + BANNER)
    assert out.ready and out.to_user == b"boot.py says hi\r\n" + BANNER
    return t


def test_tracker_follows_boot_run_and_prompt():
    t = ReplTracker()
    assert t.phase == "booting" and t.busy
    # A Ctrl-C before boot.py starts waits for the VM's SIGINT handler, then interrupts.
    assert t.input(bytes([CTRL_C])) == (b"", False) and t.pending_interrupt
    out = t.output(RUN_MARK[:3])  # a marker split across reads
    assert out.to_user == b"" and not out.ready
    out = t.output(RUN_MARK[3:] + b"main.py runs\n")
    assert out.ready and out.interrupt and out.to_user == b"main.py runs\r\n" and t.phase == "user"
    assert t.input(b"\x03x") == (b"x", True)  # while main.py runs Ctrl-C is a SIGINT, other bytes pass
    t.output(REPL_MARK + BANNER)
    assert t.phase == "repl" and not t.busy and t.mode == "friendly"


def test_tracker_knows_when_code_runs_at_the_prompt():
    t = booted()
    assert t.input(b"\r") == (b"\r", False) and not t.busy  # Enter on an empty line only reprints the prompt
    t.input(b"x = 1")
    assert not t.busy
    t.input(b"\r")
    assert t.busy  # the line runs: a Ctrl-C now interrupts it
    assert t.input(bytes([CTRL_C])) == (b"", True)
    t.output(b"\r\nKeyboardInterrupt: \r\n>>> ")
    assert not t.busy and t.input(bytes([CTRL_C])) == (bytes([CTRL_C]), False)  # at the prompt: a byte
    t.input(bytes([CTRL_D]))
    assert t.busy  # Ctrl-D at an empty prompt: soft reset


def test_tracker_raw_repl_and_entering_it_after_a_soft_reset():
    t = booted()
    t.output(b"\r\n" + RAW_BANNER)
    assert t.mode == "raw" and not t.busy
    t.input(b"print(1)")
    assert not t.busy
    t.input(bytes([CTRL_D]))
    assert t.busy
    t.output(b"OK1\r\n\x04\x04>")
    assert not t.busy
    # After a soft reset in the raw REPL the new VM starts friendly: its banner is hidden, Ctrl-A sent.
    t = ReplTracker(enter_raw=True)
    t.output(REPL_MARK)
    out = t.output(BANNER)
    assert out.to_user == b"" and out.to_vm == b"\x01" and not t.entering_raw
    assert t.output(RAW_BANNER).to_user == RAW_BANNER and t.mode == "raw"


def test_tracker_output_looks_like_a_board():
    t = booted()
    # Bare LF becomes CR LF, CR LF stays, also across chunks.
    assert t.output(b"a\nb\r\nc\r").to_user == b"a\r\nb\r\nc\r"
    assert t.output(b"\nd\n").to_user == b"\nd\r\n"
    # The boot script's frames leave tracebacks, even split across reads.
    tb = (b"Traceback (most recent call last):\n  File \"<stdin>\", line 1, in <module>\n"
          b"  File \"/x/tools/hourglass/vboard_boot.py\", line 230, in board_import\n"
          b"ImportError: no module named 'socket'\n>>> ")
    cut = tb.index(b"vboard_boot") - 5
    assert t.output(tb[:cut]).to_user + t.output(tb[cut:]).to_user == (
        b"Traceback (most recent call last):\r\n  File \"<stdin>\", line 1, in <module>\r\n"
        b"ImportError: no module named 'socket'\r\n>>> ")
    # While the program uses the console as a data line (kbd_intr(-1)), bytes pass exactly, and the chunk
    # after kbd_intr(3) too (it may still hold data written before the call).
    t.kbd_intr(-1)
    frame = b"\xc0\x0a  File \"vboard_boot.py\", line 1, in x\n\n\xc0"
    assert t.output(frame).to_user == frame
    t.kbd_intr(3)
    assert t.output(b"tail\n").to_user == b"tail\n"
    assert t.output(b"text\n").to_user == b"text\r\n"


def test_tracker_kbd_intr_makes_ctrl_c_a_byte():
    t = booted()
    t.input(b"run()\r")
    t.kbd_intr(-1)
    assert t.input(b"\x03\x03") == (b"\x03\x03", False)  # the program reads them (coap.serial stops on one)
    t.output(b"\r\n>>> ")
    assert t.intr_char == CTRL_C  # the REPL enables Ctrl-C again


# ---- the virtual board matches a board ---------------------------------------------------------------------

def test_output_is_cr_lf_and_tracebacks_have_no_virtual_board_frames(tmp_path):
    with vboard.VirtualBoard(tmp_path / "nrf", "PCA10056") as nrf:
        with serial.Serial(nrf.port, 115200, timeout=10) as s:
            s.write(b"\r\x03")
            time.sleep(0.5)  # both prompts arrive
            s.reset_input_buffer()
            s.write(b"print('a\\nb')\r")
            assert s.read_until(b">>> ").endswith(b"a\r\nb\r\n>>> ")
            s.write(b"import socket\r")
            out = s.read_until(b">>> ")
    assert b"ImportError: no module named 'socket'\r\n" in out, out
    assert b"vboard_boot" not in out and b"\n" not in out.replace(b"\r\n", b"")
    assert out.count(b"  File ") == 1  # only <stdin>, as on the board


def test_statvfs_and_the_filesystem_size_come_from_board_toml(tmp_path):
    b = boards.load_board("PCA10056")
    with vboard.VirtualBoard(tmp_path / "nrf", b) as nrf:
        out = mpremote(nrf.port, "exec", "import os\nprint(os.statvfs('/flash'))\n"
                       "try:\n    with open('big.bin', 'wb') as f:\n"
                       "        for i in range(100):\n            f.write(bytes(4096))\n"
                       "except OSError as e:\n    print('full', e.errno, os.stat('big.bin')[6])\n").stdout
    lines = out.splitlines()
    st = eval(lines[0])
    assert st[:3] == (b.fs_block_size, b.fs_block_size, b.fs_block_count) and 0 < st[3] == st[4] < st[2]
    errno_, written = lines[1].split()[1:]
    assert errno_ == "28" and 0 < int(written) <= b.fs_size - 2 * b.fs_block_size
    assert (nrf.flash_dir / "big.bin").stat().st_size == int(written)


def test_a_romfs_board_has_its_partition(tmp_path):
    b = boards.load_board("PCA10056")
    assert b.romfs_stock
    with vboard.VirtualBoard(tmp_path / "nrf", b) as nrf:
        out = mpremote(nrf.port, "romfs", "query").stdout
    assert f"ROMFS0 partition has size {b.romfs_size} bytes" in out, out


def _wait_for(cond, timeout=20):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)
    return cond()


def test_main_py_resets_the_board_itself(tmp_path):
    """machine.reset() and sys.exit() called by main.py (not at the REPL) are a hard and a soft reset: under
    `micropython -i` the unix port would go on to its REPL instead (it once did)."""
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "main.py").write_text(
        "import machine, sys\n"
        "n = len(open('boots.txt').read()) if 'boots.txt' in __import__('os').listdir() else 0\n"
        "open('boots.txt', 'a').write('x')\n"
        "if n == 0:\n    machine.reset()\n"
        "if n == 1:\n    sys.exit()\n")
    with vboard.VirtualBoard(flash, "ESP32_GENERIC") as vb:
        assert _wait_for(lambda: vb.hard_resets == 1 and vb.soft_resets == 1)
        assert _wait_for(lambda: (flash / "boots.txt").read_text() == "xxx")
        assert vb.vm_starts == 3


def test_rename_on_the_nrf_flash_mount(tmp_path):
    """os.rename under /flash (a mount point other than "/"): the unix port's VfsPosix refused absolute paths
    with ENOENT, which broke every atomic write (lib/store) on the nRF52840 virtual board."""
    with vboard.VirtualBoard(tmp_path / "flash", "PCA10056") as vb:
        out = mpremote(vb.port, "exec",
                       "import os\nos.mkdir('/flash/st')\nopen('/flash/st/a.new', 'w').write('1')\n"
                       "os.rename('/flash/st/a.new', '/flash/st/a')\nos.chdir('/flash/st')\n"
                       "os.rename('a', 'b')\nos.rename('/flash/st/b', '/flash/c')\nos.chdir('/flash')\n"
                       "os.rename('c', 'st/d')\nprint(sorted(os.listdir('/flash/st')))\n").stdout
    assert "['d']" in out
    assert (tmp_path / "flash" / "st" / "d").read_text() == "1"


def test_esp32_ota_partitions_and_the_bootloader(tmp_path):
    """The ESP32_GENERIC-OTA virtual board's esp32 module: ota_0/ota_1 from board.toml, 4 KiB blocks, set_boot
    refuses a non-image, and the hard reset's bootloader: new -> pending-verify, unconfirmed -> aborted."""
    b = boards.load_board("ESP32_GENERIC-OTA")
    sizes = {p.name: p.size for p in b.partitions}
    with vboard.VirtualBoard(tmp_path / "flash", b) as vb:
        out = mpremote(vb.port, "exec",
                       "import esp32\nP = esp32.Partition\nr = P(P.RUNNING)\nn = r.get_next_update()\n"
                       "print(r.info()[4], n.info()[4], n.info()[3], n.ioctl(4, 0), n.ioctl(5, 0))\n"
                       "b = bytearray(4096)\nn.writeblocks(0, b)\n"
                       "try:\n    n.set_boot()\nexcept OSError as e:\n    print('refused', e)\n"
                       "b[0] = 0xE9\nb[1:4] = b'img'\nn.writeblocks(0, b)\nn.set_boot()\n"
                       "print(esp32.otadata_state('ota_1'))\n").stdout.split()
        assert out[:5] == ["ota_0", "ota_1", str(sizes["ota_1"]), str(sizes["ota_1"] // 4096), "4096"]
        assert out[5] == "refused" and out[-1] == "new"
        ota = (tmp_path / "flash.ota").read_bytes()
        assert ota[sizes["ota_0"]:sizes["ota_0"] + 4] == b"\xe9img"
        assert set(ota[:sizes["ota_0"]]) == {0xFF}  # ota_0 untouched: erased, not a zero-filled hole
        probe = "import esp32\nprint(esp32.Partition(esp32.Partition.RUNNING).info()[4], esp32.otadata_state('ota_1'))"
        vb.hard_reset()
        assert _wait_for(lambda: vb.vm_starts == 2)
        assert mpremote(vb.port, "resume", "exec", probe).stdout.split() == ["ota_1", "pending-verify"]
        vb.hard_reset()  # never confirmed: rolled back
        assert _wait_for(lambda: vb.vm_starts == 3)
        assert mpremote(vb.port, "resume", "exec", probe).stdout.split() == ["ota_0", "aborted"]
        # confirmed images stay
        mpremote(vb.port, "resume", "exec", "import esp32\nesp32.Partition(esp32.Partition.RUNNING).get_next_update()"
                 ".set_boot()\n")
        vb.hard_reset()
        assert _wait_for(lambda: vb.vm_starts == 4)
        mpremote(vb.port, "resume", "exec", "import esp32\nesp32.Partition.mark_app_valid_cancel_rollback()\n")
        vb.hard_reset()
        assert _wait_for(lambda: vb.vm_starts == 5)
        assert mpremote(vb.port, "resume", "exec", probe).stdout.split() == ["ota_1", "valid"]
    # no esp32 module on a board whose table has no OTA slots
    with vboard.VirtualBoard(tmp_path / "plain", "ESP32_GENERIC") as vb:
        assert "ImportError" in mpremote(vb.port, "exec", "import esp32", check=False).stderr + \
            mpremote(vb.port, "exec", "import esp32", check=False).stdout


def test_vm_binary_override_and_its_modules(tmp_path, monkeypatch):
    """HOURGLASS_MICROPYTHON chooses the VM binary (a build with the bundle frozen in, `hourglass frozen-vm`);
    the pinned VM has no frozen board, so the virtual board still boots from vboard_boot.py's source."""
    from hourglass import mpvm
    pinned = find_executable("micropython")
    modules = mpvm.binary_modules(pinned)
    assert {"asyncio", "asyncio.core", "mip", "sys", "vfs"} <= modules and not any("/" in m for m in modules)
    assert "vboard_boot" not in modules and "cbor" not in modules
    monkeypatch.setenv(mpvm.BINARY_ENV, str(tmp_path / "nothing"))
    with pytest.raises(UserError, match="HOURGLASS_MICROPYTHON=.*not an executable"):
        mpvm.micropython_binary()
    monkeypatch.setenv(mpvm.BINARY_ENV, pinned)
    assert mpvm.micropython_binary() == pinned and not mpvm.frozen_board()
    with vboard.VirtualBoard(tmp_path / "flash", "ESP32_GENERIC-OTA") as vb:
        out = mpremote(vb.port, "exec", "import sys, esp32; print(sys.path, esp32.Partition.RUNNING)").stdout
    assert "['', '.frozen', '/lib']" in out
