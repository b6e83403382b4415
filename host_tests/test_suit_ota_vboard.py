"""SUIT over the air end to end on the virtual boards (the MicroPython VM at the board's heap, boot.py/main.py
run at every reset): the update server (aiocoap, SQLite) pushes a signed firmware image to an ESP32_GENERIC-OTA
virtual board (its esp32 module's OTA partitions and bootloader) and an app bundle to an ESP32 and, over the
serial line through `hourglass gateway`, to an nRF52840; the device streams, installs, restarts, confirms and
reports. Rollbacks: a health check that fails, a reset before confirmation, a bundle whose app raises."""
from __future__ import annotations

import asyncio
import time

import aiocoap
import cbor2
import pytest

from hourglass import boards, vboard
from hourglass.common import board_udp_port
from suit_ota_common import (ESP32_UPDATE_HEAP, Console, Fleet, build as build_envelope, flash_board as _flash,
                             image as _image, read_heap as _heap, write_key)
from test_coap_serial_pty import GatewayProc


def _ota_board(tmp_path, deadline=20000):
    key, pub = write_key(tmp_path, "k")
    dev_port = board_udp_port()
    return key, pub, dev_port, deadline


async def _ota_update(tmp_path, image: bytes, name: str, seq: int, fleet, key, dev_port, szx=6):
    (tmp_path / f"{name}.bin").write_bytes(image)
    env = build_envelope(tmp_path, name, seq, [{"id": ["firmware"], "file": f"{name}.bin",
                                                "uri": fleet.uri(name, "fw")}], key)
    fleet.campaigns.push(name, env, cbor2.loads(key.read_bytes()), {"fw": tmp_path / f"{name}.bin"},
                         {"dev1": f"127.0.0.1:{dev_port}"})
    return env


def test_the_esp32_ota_board_gives_its_program_the_heap_of_the_plain_esp32(tmp_path):
    """The OTA board's esp32 module (vboard_esp32.py, run from source) is in a board's firmware, not on its
    heap: main.py starts with the free heap the plain ESP32_GENERIC board gives it."""
    free = {}
    for board in ("ESP32_GENERIC", "ESP32_GENERIC-OTA"):
        flash = tmp_path / board
        flash.mkdir()
        (flash / "main.py").write_text("import gc\ngc.collect()\nprint('FREE', gc.mem_free())\n")
        vb = vboard.VirtualBoard(flash, board)
        vb.start()
        con = Console(vb.port)
        try:
            asyncio.run(con.wait("FREE", timeout=60))
            free[board] = int(con.text().split("FREE")[1].split()[0])
        finally:
            con.close()
            vb.stop()
    assert abs(free["ESP32_GENERIC"] - free["ESP32_GENERIC-OTA"]) < 2048, free


def _start_ota_board(tmp_path, fleet, dev_port, pub):
    """The ESP32_GENERIC-OTA virtual board at the update heap budget, its app served by `fleet`, started: (board,
    its console)."""
    cfg = {"kind": "ota", "device": "dev1", "server": ["127.0.0.1", fleet.port], "port": dev_port, "szx": 6,
           "deadline": 8000}
    vb = vboard.VirtualBoard(_flash(tmp_path, tmp_path, cfg, pub), "ESP32_GENERIC-OTA", heap=ESP32_UPDATE_HEAP)
    vb.start()
    return vb, Console(vb.port)

def test_firmware_image_over_the_air_on_the_esp32_ota_board(tmp_path):
    """Push, stream into ota_1, set_boot, hard reset, health check, confirm; /suit/state and the partition
    bytes; then an image whose health check fails and one whose board resets before it confirms: both roll
    back to the running image, reported from it."""
    key, pub, dev_port, _ = _ota_board(tmp_path)

    async def run():
        fleet = await Fleet(tmp_path).start()
        vb, con = _start_ota_board(tmp_path, fleet, dev_port, pub)
        try:
            await con.wait("OTA ready")
            assert "OTA running ota_0" in con.text()
            image = _image(150_000, 1)
            t0 = time.monotonic()
            await _ota_update(tmp_path, image, "fw1", 1, fleet, key, dev_port)
            try:
                row = await fleet.wait_state("fw1", "dev1", ("confirmed", "failed"), 60)
            except AssertionError as e:
                raise AssertionError(f"{e}\n{con.text()[-3000:]}") from None
            elapsed = time.monotonic() - t0
            assert row["state"] == "confirmed", (row["message"], con.text()[-3000:])
            await con.wait("OTA boot confirmed")  # printed just after its report went out
            # the board restarted after the trigger's check (the download's boot) and after its verdict
            await con.wait("OTA ready", 3)
            assert "OTA running ota_1" in con.text()
            ota = (tmp_path / "flash.ota").read_bytes()
            size = 0x180000
            assert ota[size:size + len(image)] == image  # byte for byte in ota_1
            assert "ota_1 1 valid" in (tmp_path / "flash.otadata").read_text()
            ctx = await aiocoap.Context.create_client_context()
            try:
                r = await ctx.request(aiocoap.Message(code=aiocoap.GET,
                                                      uri=f"coap://127.0.0.1:{dev_port}/suit/state")).response
            finally:
                await ctx.shutdown()
            st = cbor2.loads(r.payload)
            digest = fleet.store.campaign("fw1")["digest"]
            assert st[1]["manifest"] == [cbor2.dumps([-16, digest]), 1] and st[2] == "ota_1" and st[3] == "ota_0"
            print(f"OTA 150 KB: {elapsed:.1f} s push to confirmed; heap {await _heap(f'coap://127.0.0.1:{dev_port}/heap')}")

            # an image whose health check fails: the app resets unconfirmed, the bootloader rolls back
            await _ota_update(tmp_path, _image(20_000, 2, b"BADCHECK"), "fw2", 2, fleet, key, dev_port)
            row = await fleet.wait_state("fw2", "dev1", ("failed",), 180)
            assert "trigger refused" not in row["message"], row["message"]  # failed for its own reason, not heap
            await con.wait("OTA boot rolled back", 1, 120)
            await con.wait("OTA ready", 5, 60)
            assert con.text().rstrip().split("OTA running")[-1].startswith(" ota_1"), con.text()[-2000:]
            reports = fleet.campaigns.reports("dev1")
            assert reports[-1]["phase"] == "rolled back" and "health check failed" in reports[-1]["message"]
            assert "ota_0 2 aborted" in (tmp_path / "flash.otadata").read_text()

            # a reset before the image confirms itself (its health check hangs; the test presses reset)
            await _ota_update(tmp_path, _image(20_000, 3, b"HANGBOOT"), "fw3", 3, fleet, key, dev_port)
            try:
                await con.wait("OTA running ota_0", 4, 180)  # (the first boot, fw1's download's, fw2's, fw3's)
            except AssertionError as e:
                raise AssertionError(f"{fleet.campaigns.status('fw3')} {fleet.campaigns.reports('dev1')[-1:]}\n{e}")
            await asyncio.sleep(0.5)
            vb.hard_reset()
            await con.wait("OTA boot rolled back", 2, 120)
            row = await fleet.wait_state("fw3", "dev1", ("failed",), 60)
            assert "reset before it confirmed" in row["message"], row
            assert con.text().rstrip().split("OTA running")[-1].startswith(" ota_1")
        finally:
            (tmp_path / "console.log").write_text(con.text())  # the device's side, for a failure's post-mortem
            con.close()
            vb.stop()
            await fleet.stop()
    asyncio.run(run())


@pytest.mark.parametrize("board", ["ESP32_GENERIC", "PCA10056"])
def test_bundle_update_and_restore_on_a_virtual_board(tmp_path, board):
    """The app bundle: a new app.py is pushed (over UDP on the ESP32, over the serial line through the
    gateway on the nRF52840), the board soft-resets into it and confirms; then an app that raises at import
    is undone and the old app runs again."""
    key, pub = write_key(tmp_path, "k")
    serial = board == "PCA10056"
    dev_port = board_udp_port()

    async def run():
        fleet = await Fleet(tmp_path).start()
        b = boards.load_board(board)
        cfg = {"kind": "bundle", "device": "dev1", "server": "serial" if serial else ["127.0.0.1", fleet.port],
               "port": dev_port, "szx": 6, "root": b.fs_mount if b.fs_mount != "/" else ""}
        flash = _flash(tmp_path, tmp_path, cfg, pub, board)
        vb = vboard.VirtualBoard(flash, board, heap=ESP32_UPDATE_HEAP if board.startswith("ESP32") else None)
        vb.start()
        gw = None
        con = None
        try:
            if serial:
                gw = GatewayProc(vb.port, "--upstream", f"127.0.0.1:{fleet.port}")
                address = f"127.0.0.1:{gw.port}"

                async def wait(needle, count=1, timeout=120):
                    await asyncio.get_running_loop().run_in_executor(None, gw.wait_text, needle, timeout, count)
            else:
                con = Console(vb.port)
                address = f"127.0.0.1:{dev_port}"
                wait = con.wait
            if serial:  # its first lines went out before the gateway opened the port: ask it instead
                await _heap(f"coap://{address}/heap")
            else:
                await wait("OTA ready")
            new_app = "VERSION = 2\n\ndef healthy():\n    return True\n" + "# padding\n" * 300
            (tmp_path / "app2.py").write_text(new_app)
            env = build_envelope(tmp_path, "b1", 1, [{"id": ["app.py"], "file": "app2.py",
                                                      "uri": fleet.uri("b1", "app")}], key)
            t0 = time.monotonic()
            fleet.campaigns.push("b1", env, cbor2.loads(key.read_bytes()), {"app": tmp_path / "app2.py"},
                                 {"dev1": address})
            try:
                row = await fleet.wait_state("b1", "dev1", ("confirmed", "failed"), 120)
            except AssertionError as e:
                out = gw.text() + bytes(gw.err).decode() if gw else con.text()
                raise AssertionError(f"{e}\n{out[-3000:]}") from None
            elapsed = time.monotonic() - t0
            assert row["state"] == "confirmed", (row["message"], gw.text()[-2000:] if gw else con.text()[-2000:])
            root = flash
            assert (root / "app.py").read_text() == new_app
            print(f"bundle on {board}: {elapsed:.1f} s push to confirmed")
            # the board restarted after the trigger's check (the download's boot) and after its verdict
            await wait("OTA ready", 2 if serial else 3)

            (tmp_path / "bad.py").write_text("raise ValueError('broken app')\n")
            env = build_envelope(tmp_path, "b2", 2, [{"id": ["app.py"], "file": "bad.py",
                                                      "uri": fleet.uri("b2", "app")}], key)
            fleet.campaigns.push("b2", env, cbor2.loads(key.read_bytes()), {"app": tmp_path / "bad.py"},
                                 {"dev1": address})
            row = await fleet.wait_state("b2", "dev1", ("failed",), 240)
            assert "ValueError" in row["message"] and "restored" in row["message"], row
            await wait("OTA ready", 4 if serial else 5)
            assert (root / "app.py").read_text() == new_app
        finally:
            if gw is not None:
                gw.stop()
            if con is not None:
                con.close()
            vb.stop()
            await fleet.stop()
    asyncio.run(run())


def test_a_rollback_report_the_server_could_not_take_is_sent_again_from_the_next_boot(tmp_path):
    """The image's health check fails and the bootloader rolls it back; the old image reports the rollback,
    but the server's database refuses that report (5.00, every try) until the board has given up and
    restarted: the report stays in the board's outbox and its next boot sends it again, at the board's
    heap budget. It used to be dropped at the first 5.xx answer: the campaign never heard of the rollback."""
    key, pub, dev_port, _ = _ota_board(tmp_path)

    async def run():
        fleet = await Fleet(tmp_path).start()
        vb, con = _start_ota_board(tmp_path, fleet, dev_port, pub)
        # the server's database refuses every "rolled back" report (a fault in the real server's SQLite)
        fleet.store.db.execute("CREATE TEMP TRIGGER refuse BEFORE INSERT ON reports WHEN NEW.phase = 'rolled back' "
                               "BEGIN SELECT RAISE(ABORT, 'the database refuses it'); END")
        try:
            await con.wait("OTA ready")
            await _ota_update(tmp_path, _image(20_000, 2, b"BADCHECK"), "fw2", 2, fleet, key, dev_port)
            await con.wait("OTA boot rolled back", 1, 180)  # (after its tries: the report was not taken)
            await con.wait("OTA ready", 2, 60)  # the next boot, its outbox not empty
            assert [r["phase"] for r in fleet.campaigns.reports("dev1")][-1] == "rollback"
            fleet.store.db.execute("DROP TRIGGER refuse")
            row = await fleet.wait_state("fw2", "dev1", ("failed",), 60)
            end = asyncio.get_running_loop().time() + 60
            while fleet.campaigns.reports("dev1")[-1]["phase"] != "rolled back":
                assert asyncio.get_running_loop().time() < end, (fleet.campaigns.reports("dev1"), con.text()[-3000:])
                await asyncio.sleep(0.1)
            reports = fleet.campaigns.reports("dev1")
            assert [r["phase"] for r in reports].count("rolled back") == 1
            assert "health check failed" in reports[-1]["message"], (row, reports[-1])
        finally:
            (tmp_path / "console.log").write_text(con.text())
            con.close()
            vb.stop()
            await fleet.stop()
    asyncio.run(run())
