"""`hourglass demo` end to end, non-interactively, as CI runs it: every phase passes, the device ends on the new
version, the broken update is refused and the device stays on the good one; the summary says so. The hardware
route's dry run, and the nRF52840 (serial line) refusal with its reason."""
from __future__ import annotations

import json
import subprocess
import sys

from hourglass import cli
from hourglass.demo import AGENT_VM_HEAP


def _hourglass(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hourglass.cli", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_demo_on_the_esp32_virtual_board(tmp_path):
    out = tmp_path / "summary.json"
    p = _hourglass("demo", "--work", str(tmp_path / "demo"), "--json", str(out), "--timeout", "120")
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    s = json.loads(out.read_text())
    assert s["ok"] and [ph["name"] for ph in s["phases"]] == ["build", "host", "boot", "bootstrap", "serve",
                                                             "update", "broken"]
    assert all(ph["ok"] for ph in s["phases"])
    assert s["device"]["app"] == 2 and s["device"]["registered"] is True
    assert s["server"]["campaigns"] == {"app-v2": "confirmed", "app-broken": "failed"}
    assert s["server"]["noob_state"] == 4  # Registered
    by = {ph["name"]: ph for ph in s["phases"]}
    assert "3 protected notifications" in by["serve"]["result"] and "4.01" in by["serve"]["result"]
    assert "restored" in by["broken"]["result"] and "still on app v2" in by["broken"]["result"]
    for name in ("bootstrap", "serve", "update", "broken"):
        assert by[name]["wire"] > 0 and by[name]["peak"] > 0
    assert "PASS broken" in p.stdout and "OOB message: https://hourglass.local/oob?P=" in p.stdout
    assert "\u2580" in p.stdout  # the device's QR code, in half blocks
    # at the heap the demo says the agent needs on this board (README, board matrix)
    assert s["heap"] == AGENT_VM_HEAP
    # registered, the agent restarted on a clean heap, and the registered boots never loaded EAP-NOOB
    console = (tmp_path / "demo" / "console.log").read_text(errors="replace")
    before, _, after = console.partition("bootstrap: registered; restarting on a clean heap")
    assert after and "peer state (not loaded) registered" in after
    assert "peer state 4 registered" in before and "peer state 4" not in after
    # both updates were installed at boot, each in a boot of its own before the agent's endpoint started: the
    # download's boot resets, main.py's agent_config.boot() runs the processor and resets again
    assert "installed at boot" in by["update"]["result"]
    boots = console.split("soft reboot")
    installs = [b for b in boots if "install: heap live" in b]
    assert len(installs) == 2, console[-3000:]
    assert all("agent: coap on" not in b for b in installs)
    print(p.stdout[-3000:])


def test_demo_hardware_dry_run(capsys):
    assert cli.main(["demo", "--board", "ESP32_GENERIC-OTA", "--port", "/dev/ttyUSB0", "--wifi-ssid", "lab",
                     "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "hourglass flash --board ESP32_GENERIC-OTA --port /dev/ttyUSB0" in text
    assert "hourglass deploy" in text and "wifi lab" in text


def test_demo_on_the_nrf52840_virtual_board_over_the_gateway(tmp_path):
    """Over the serial line, at the nRF52840's own heap budget: the gateway's one upstream is the demo's relay to
    the controller and the update server; the whole flow passes within the board's 64 KiB filesystem."""
    out = tmp_path / "summary.json"
    p = _hourglass("demo", "--board", "PCA10056", "--work", str(tmp_path / "demo"), "--json", str(out),
                   "--timeout", "120")
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    s = json.loads(out.read_text())
    assert s["ok"] and all(ph["ok"] for ph in s["phases"])
    assert s["device"]["app"] == 2 and s["server"]["campaigns"] == {"app-v2": "confirmed", "app-broken": "failed"}
    by = {ph["name"]: ph for ph in s["phases"]}
    assert "3 protected notifications" in by["serve"]["result"] and "restored" in by["broken"]["result"]


def test_demo_interactive_the_user_confirms_on_the_web_page(tmp_path):
    """`hourglass demo --interactive`: the demo prints the device's OOB message and the page's URL and waits; the
    user (headless Chromium, as test_noob_web.py drives it) types the message into the page; the demo goes on
    and completes."""
    import asyncio
    import os
    import re
    import shutil

    import pytest
    chromium = "/usr/bin/chromium"
    if shutil.which(chromium) is None:
        pytest.skip("chromium not installed (tools/setup-system.sh)")
    from playwright.async_api import async_playwright

    out = tmp_path / "summary.json"
    proc = subprocess.Popen([sys.executable, "-m", "hourglass.cli", "demo", "--interactive", "--work",
                             str(tmp_path / "demo"), "--json", str(out), "--timeout", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = []

    def until(pattern: str) -> re.Match:
        for line in proc.stdout:
            seen.append(line)
            m = re.search(pattern, line)
            if m:
                return m
        raise AssertionError("the demo ended first:\n" + "".join(seen[-40:]))

    async def user(page_url: str, oob: str) -> str:
        pw = await async_playwright().start()
        b = await pw.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            tab = await b.new_page()
            await tab.goto(page_url)
            await tab.fill("input[name=oob]", oob)
            await tab.click("button[type=submit]")
            return await tab.inner_text("#result")
        finally:
            await b.close()
            await pw.stop()

    try:
        oob = until(r"the device's OOB message: (https://\S+)").group(1)
        page_url = until(r"open (http://127\.0\.0\.1:\d+/) and enter the device's OOB message").group(1)
        result = asyncio.run(asyncio.wait_for(user(page_url, oob), 120))
        assert "accepted" in result and "not accepted" not in result, result
        rest = proc.communicate(timeout=600)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(seen)[-3000:] + rest[-3000:]
    s = json.loads(out.read_text())
    assert s["ok"] and s["device"]["app"] == 2 and s["server"]["noob_state"] == 4
    assert "confirmed through the server" not in "".join(seen) + rest  # the user did it, not the demo
