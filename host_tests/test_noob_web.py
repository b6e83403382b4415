"""The OOB web page in headless Chromium (Debian's, driven by playwright): a device on the MicroPython VM shows its
OOB URL, the user types it into the page and sees the device become Registered; the page's server-to-peer QR code,
decoded from a screenshot, is the very message the device then accepts. Plus the `hourglass noob` CLI on the same
SQLite state."""
from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import sys

import aiocoap
import pytest
from hourglass.common import board_udp_port, free_udp_port
from test_coapeap_vm import VmDevice, wait_for

from hourglass import noob_server as ns
from hourglass.noob_controller import Controller
from hourglass.noob_db import Database
from hourglass.noob_web import NoobWeb

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="chromium not installed (tools/setup-system.sh)")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SERVER_URL = "https://noob.example/oob"


async def setup(tmp_path, dirs):
    db = Database(tmp_path / "noob.sqlite")
    db.set_config("server_info", '{"Type":"hourglass","ServerName":"Test","ServerURL":"%s"}' % SERVER_URL)
    server = ns.NoobServer(db.config("server_info"), registry=db, dirs=3, sleep_time=1)
    ctrl_port, dev_port = free_udp_port(), board_udp_port()
    controller = Controller(server, db, tmp_path, lifetime=0)
    await controller.start(("127.0.0.1", ctrl_port))
    page = NoobWeb(server, db, SERVER_URL)
    http = await page.start("127.0.0.1", 0)
    dev = VmDevice(tmp_path, dev_port, ctrl_port, dirs, "12")
    await dev.boot()
    await dev.wait(lambda line: line.startswith("STATE 1"))
    await wait_for(lambda: [p for p in db.peers() if p["state"] == 1])  # the server has the Initial Exchange too
    return db, server, controller, page, dev, http, dev_port


async def browser():
    from playwright.async_api import async_playwright
    pw = await async_playwright().start()
    b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    return pw, b


def test_enter_device_oob_and_see_registered(tmp_path):
    async def main():
        db, server, controller, page, dev, http, _ = await setup(tmp_path, 1)
        pw, b = await browser()
        try:
            tab = await b.new_page()
            await tab.goto(f"http://127.0.0.1:{http}/")
            peer_id = db.peers()[0]["peer_id"]
            assert "Waiting for OOB" in await tab.inner_text(f"#peer-{peer_id} .state")
            url = (await dev.wait(lambda line: line.startswith("OOB "))).split(" ", 1)[1]
            await tab.fill("input[name=oob]", "P=" + peer_id + "&N=AAAAAAAAAAAAAAAAAAAAAA&H=AAAAAAAAAAAAAAAAAAAAAA")
            await tab.click("button[type=submit]")
            assert "not accepted" in await tab.inner_text("#result")
            await tab.goto(f"http://127.0.0.1:{http}/")
            await tab.fill("input[name=oob]", url)
            await tab.click("button[type=submit]")
            assert "accepted" in await tab.inner_text("#result")
            await tab.goto(f"http://127.0.0.1:{http}/")
            # the page reloads itself: the device's Completion shows up without a click
            await tab.wait_for_function(f"document.querySelector('#peer-{peer_id} .state').textContent"
                                        " === 'Registered'", timeout=60000)
            assert "OSCORE" in await tab.inner_text(f"#peer-{peer_id}")
        finally:
            await b.close()
            await pw.stop()
            await dev.kill()
            await page.close()
            await controller.close()
    asyncio.run(asyncio.wait_for(main(), 240))


def test_server_oob_qr_decodes_to_the_message_the_device_accepts(tmp_path):
    import zxingcpp
    from PIL import Image

    async def main():
        db, server, controller, page, dev, http, dev_port = await setup(tmp_path, 2)
        pw, b = await browser()
        try:
            tab = await b.new_page()
            await tab.goto(f"http://127.0.0.1:{http}/")
            peer_id = db.peers()[0]["peer_id"]
            await tab.click(f"#peer-{peer_id} button")
            shown = await tab.inner_text("#oob")
            assert shown.startswith(SERVER_URL + "?P=" + peer_id + "&N=")
            png = await tab.locator("#qr").screenshot()
            decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]
            assert decoded == [shown]
            r = await controller.ctx.request(aiocoap.Message(code=aiocoap.PUT, uri=f"coap://127.0.0.1:{dev_port}"
                                                             "/noob/oob", payload=decoded[0].encode())).response
            assert r.code == aiocoap.CHANGED
            await dev.wait(lambda line: line == "STATE 4 1")
            await wait_for(lambda: db.session(peer_id))
        finally:
            await b.close()
            await pw.stop()
            await dev.kill()
            await page.close()
            await controller.close()
    asyncio.run(asyncio.wait_for(main(), 240))


def test_cli_on_the_same_state(tmp_path):
    db = Database(tmp_path / "noob.sqlite")
    db.set_config("server_info", '{"Type":"hourglass"}')

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "hourglass.cli", "noob", "--state", str(tmp_path), *args],
                              capture_output=True, text=True)

    assert cli("list").stdout.strip() == "no devices"
    r = cli("show", "nobody")
    assert r.returncode == 1 and r.stderr.strip() == "hourglass noob: no device nobody"
    r = cli("oob", "--accept", "P=x&N=y&H=z")
    assert r.returncode == 1 and "not accepted" in r.stderr
    assert db.get("x") is None
    r = cli("oob", "nobody")
    assert r.returncode == 1 and r.stderr.startswith("hourglass noob: ")
