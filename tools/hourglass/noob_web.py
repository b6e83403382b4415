"""The OOB web page of `hourglass noob serve` (aiohttp, in the server's process and event loop).

Plain HTML forms, no script: the page reloads itself every few seconds to show each device's state and history
live. The user
- reads a server -> peer OOB message as text and as a QR code (segno) to enter into the device;
- pastes a peer -> server OOB message, or opens the URL the device shows: its query lands on /oob and completes
  the OOB step.
Nothing secret is shown but the OOB message itself, which is what the user carries.
"""
from __future__ import annotations

import html
import time

import segno
from aiohttp import web

from hourglass.noob_db import Database
from hourglass.noob_server import NoobError, NoobServer

_STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;"
          "padding:.3em .6em;text-align:left}code{word-break:break-all}.ok{color:#060}.bad{color:#a00}")


def _page(title: str, body: str, refresh: bool = False) -> web.Response:
    meta = '<meta http-equiv="refresh" content="2">' if refresh else ""
    text = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return web.Response(text=text, content_type="text/html")


def qr_png(text: str) -> str:
    """The QR code of text as a data: URI (PNG)."""
    return segno.make(text, error="m").png_data_uri(scale=6, border=4)


class NoobWeb:
    def __init__(self, server: NoobServer, db: Database, server_url: str | None = None):
        self.server = server
        self.db = db
        self.server_url = server_url  # the page's own URL, put before server -> peer OOB messages in the QR code
        self.app = web.Application()
        self.app.add_routes([web.get("/", self.index), web.get("/oob", self.oob_get), web.post("/oob", self.oob_post),
                             web.post("/make", self.make)])
        self.runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> int:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        return site._server.sockets[0].getsockname()[1] if port == 0 else port  # type: ignore[union-attr]

    async def close(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    async def index(self, request: web.Request) -> web.Response:
        rows = []
        for p in self.db.peers():
            pid = html.escape(p["peer_id"])
            hist = "<br>".join(f'{time.strftime("%H:%M:%S", time.localtime(e["at"]))} {html.escape(e["event"])}'
                               for e in self.db.history(p["peer_id"], 8))
            action = ""
            if p["state"] == 1 and p["dirp"] & 2:
                action = (f'<form method="post" action="/make"><input type="hidden" name="peer" value="{pid}">'
                          '<button type="submit">Show an OOB code for this device</button></form>')
            rows.append(f'<tr id="peer-{pid}"><td><code>{pid}</code></td><td class="state">'
                        f'{html.escape(p["state_name"] or "")}</td><td>{html.escape(p["address"] or "")}</td>'
                        f'<td>{"OSCORE" if p["session"] else ""}</td><td>{hist}</td><td>{action}</td></tr>')
        table = ("<table><tr><th>PeerId</th><th>State</th><th>Address</th><th>Session</th><th>History</th><th></th>"
                 "</tr>" + "".join(rows) + "</table>") if rows else "<p>No device has announced itself yet.</p>"
        form = ('<h2>Enter a device\'s OOB message</h2><form method="post" action="/oob">'
                '<label>OOB message or URL <input name="oob" size="80" autocomplete="off"></label> '
                '<button type="submit">Submit</button></form>')
        return _page("Hourglass EAP-NOOB devices", table + form, refresh=True)

    def _accept(self, text: str) -> web.Response:
        ok = self.server.accept_oob(text)
        body = ('<p class="ok" id="result">OOB message accepted: the device completes its registration when it '
                'next connects.</p>' if ok else
                '<p class="bad" id="result">OOB message not accepted (unknown device, wrong or expired code).</p>')
        return _page("OOB step", body + '<p><a href="/">Devices</a></p>')

    async def oob_get(self, request: web.Request) -> web.Response:
        """The URL the device shows: ServerURL?P=..&N=..&H=.. lands here."""
        return self._accept(request.query_string)

    async def oob_post(self, request: web.Request) -> web.Response:
        form = await request.post()
        return self._accept(str(form.get("oob", "")))

    async def make(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            text = self.server.make_oob(str(form.get("peer", "")))
        except NoobError as e:
            return _page("OOB code", f'<p class="bad">{html.escape(e.info)}</p><p><a href="/">Devices</a></p>')
        shown = f"{self.server_url}?{text}" if self.server_url else text
        body = (f'<p>Enter this on the device (console or its <code>/noob/oob</code> resource), or scan it:</p>'
                f'<p><code id="oob">{html.escape(shown)}</code></p><img id="qr" alt="QR code of the OOB message" '
                f'src="{qr_png(shown)}"><p><a href="/">Devices</a></p>')
        return _page("OOB code", body)
