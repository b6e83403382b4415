"""CoAP-EAP controller (RFC 9820) on aiocoap: the EAP authenticator in the CoAP client role, driving the EAP-NOOB
server core (`noob_server.NoobServer`) against each device that announces itself.

A device's NON POST to `/.well-known/coap-eap` names its first EAP resource. The controller then POSTs each EAP
request there, with the CoAP-EAP_Info map {1: cipher suites, 2: RID-C} on the first, and follows each 2.01's
Location-Path. When EAP-NOOB succeeds it derives the OSCORE Master Secret and Salt from the MSK (RFC 9820 section
6.1, the reading written down in lib/coapeap/coapeap/__init__.py, implemented here independently on
`cryptography`) and sends EAP-Success with {4: Session-Lifetime} through the new context; from then on
`request(peer_id, ...)` talks to the device through it. The EAP exchanges themselves go unprotected (a re-key's
Reconnect too): EAP-NOOB authenticates them, and a device that lost its session can always bootstrap again.

OSCORE contexts live as aiocoap security-context folders under `<state>/oscore/<peer>/`, their key material in
SQLite (`noob_db.Database.sessions`).
"""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import aiocoap  # type: ignore[import-untyped]
import aiocoap.resource  # type: ignore[import-untyped]
import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from hourglass.noob_db import Database
from hourglass.noob_server import FAILURE, SUCCESS, NoobServer

CONTENT_FORMAT = 269  # application/coap-eap
SUITES = [0]  # AES-CCM-16-64-128 + SHA-256: what our device's OSCORE has
INFO_CS, INFO_RID_C, INFO_RID_I, INFO_LIFETIME = 1, 2, 3, 4
MAX_STEPS = 32  # an EAP-NOOB conversation needs at most 6 round trips; more is a confused or hostile device

log = logging.getLogger("hourglass.noob")


def oscore_secrets(msk: bytes, cs: bytes) -> tuple[bytes, bytes]:
    """Master Secret and Salt: HKDF-Expand(MSK, CS || label, 16 / 8) with the labels RFC 9820 gives."""
    def expand(label: bytes, n: int) -> bytes:
        return HKDFExpand(hashes.SHA256(), n, cs + label).derive(msk)
    return expand(b"COAP-EAP OSCORE MASTER SECRET", 16), expand(b"COAP-EAP OSCORE MASTER SALT", 8)


def split(payload: bytes) -> tuple[bytes, dict | None]:
    """The EAP packet and the CoAP-EAP_Info map after it; ValueError if malformed."""
    if len(payload) < 4:
        raise ValueError("EAP packet too short")
    n = (payload[2] << 8) | payload[3]
    if n < 4 or n > len(payload):
        raise ValueError("bad EAP length")
    if n == len(payload):
        return payload, None
    info = cbor2.loads(payload[n:])
    if not isinstance(info, dict):
        raise ValueError("CoAP-EAP_Info is not a map")
    return payload[:n], info


class Controller:
    def __init__(self, server: NoobServer, db: Database, state_dir: Path, lifetime: int = 3600):
        self.server = server
        self.db = db
        self.state_dir = Path(state_dir)
        self.lifetime = lifetime
        self.ctx: aiocoap.Context | None = None
        self.tasks: dict[str, asyncio.Task] = {}  # device address -> its conversation
        self.contexts: dict[str, Any] = {}  # peer_id -> aiocoap security context
        self.uris: dict[str, str] = {}  # peer_id -> the device's base URI
        self.events: asyncio.Queue[str] = asyncio.Queue()  # peer ids whose state changed (the web page listens)

    async def start(self, bind: tuple[str, int]) -> None:
        site = aiocoap.resource.Site()
        site.add_resource([".well-known", "coap-eap"], _Trigger(self))
        self.ctx = await aiocoap.Context.create_server_context(site, bind=bind)

    async def close(self) -> None:
        for t in self.tasks.values():
            t.cancel()
        if self.ctx:
            await self.ctx.shutdown()
        self.contexts.clear()

    # ---- one conversation ------------------------------------------------------------------------------

    def trigger(self, base: str, path: str) -> None:
        old = self.tasks.get(base)
        if old and not old.done():
            old.cancel()  # a device that announces again has given up on the conversation before
        self.tasks[base] = asyncio.ensure_future(self._drive(base, path))

    async def _post(self, uri: str, payload: bytes) -> aiocoap.Message:
        assert self.ctx is not None
        msg = aiocoap.Message(code=aiocoap.POST, uri=uri, payload=payload, content_format=CONTENT_FORMAT)
        return await self.ctx.request(msg).response

    async def _drive(self, base: str, path: str) -> None:
        assert self.ctx is not None
        self.ctx.client_credentials.pop(base + "/*", None)  # the EAP exchanges go unprotected
        conv = self.server.conversation()
        rid_c = os.urandom(1)
        offered = {INFO_CS: SUITES, INFO_RID_C: rid_c}
        pending = [conv.start()]
        first = True
        cs = rid_i = None
        suite = 0
        try:
            for _ in range(MAX_STEPS):
                if not pending:
                    break
                pkt = pending.pop(0)
                if pkt[0] == SUCCESS:
                    assert conv.keys is not None and cs is not None and rid_i is not None
                    await self._success(base, path, conv.peer.peer_id, pkt, conv.keys[0], cs, rid_c, rid_i, suite)
                    return
                payload = pkt + cbor2.dumps(offered) if first else pkt
                resp = await self._post(base + path, payload)
                if pkt[0] == FAILURE:
                    break
                if resp.code != aiocoap.CREATED:
                    log.info("%s answered %s; conversation ended", base, resp.code)
                    break
                eap, info = split(resp.payload)
                if first:
                    info = info or {}
                    chosen = info.get(INFO_CS)
                    rid_i = info.get(INFO_RID_I)
                    if not isinstance(chosen, list) or len(chosen) != 1 or chosen[0] not in SUITES or \
                            not isinstance(rid_i, bytes) or not 0 < len(rid_i) <= 7 or rid_i == rid_c:
                        raise ValueError("bad cipher suite or RID-I in the device's CoAP-EAP_Info")
                    suite = chosen[0]
                    cs = cbor2.dumps(SUITES) + cbor2.dumps(chosen)
                    first = False
                path = "/" + "/".join(resp.opt.location_path)
                if len(eap) > 4:
                    pending.extend(conv.receive(eap))
                if conv.assoc is not None:
                    self.db.set_address(conv.assoc.peer_id, base)
                    self.events.put_nowait(conv.assoc.peer_id)
        except (ValueError, aiocoap.error.Error) as e:
            log.info("conversation with %s failed: %s", base, e)
        finally:
            if conv.assoc is not None:
                self.events.put_nowait(conv.assoc.peer_id)

    async def _success(self, base: str, path: str, peer_id: str, pkt: bytes, msk: bytes, cs: bytes, rid_c: bytes,
                       rid_i: bytes, suite: int) -> None:
        assert self.ctx is not None
        secret, salt = oscore_secrets(msk, cs)
        expires = time.time() + self.lifetime if self.lifetime else None
        sec = self._security_context(peer_id, secret, salt, rid_c, rid_i)
        self.ctx.client_credentials[base + "/*"] = sec
        payload = pkt + cbor2.dumps({INFO_LIFETIME: self.lifetime}) if self.lifetime else pkt
        resp = await self._post(base + path, payload)
        if resp.code != aiocoap.CHANGED:
            self.db.log(peer_id, f"EAP-Success not accepted: {resp.code}")
            return
        self.db.put_session(peer_id, secret, salt, rid_c, rid_i, suite, expires)
        self.db.set_address(peer_id, base)
        self.contexts[peer_id] = sec
        self.uris[peer_id] = base
        self.events.put_nowait(peer_id)

    def _security_context(self, peer_id: str, secret: bytes, salt: bytes, rid_c: bytes, rid_i: bytes) -> Any:
        from aiocoap.oscore import FilesystemSecurityContext  # type: ignore[import-untyped]
        assert self.ctx is not None
        base = self.uris.get(peer_id)
        if base:
            self.ctx.client_credentials.pop(base + "/*", None)
        if self.contexts.pop(peer_id, None) is not None:
            gc.collect()  # aiocoap releases the old folder's lock when its context object goes
        d = self.state_dir / "oscore" / peer_id
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        # the controller sends to the device's Recipient ID (RID-I) and receives on its own (RID-C)
        (d / "settings.json").write_text(json.dumps({
            "sender-id_hex": rid_i.hex(), "recipient-id_hex": rid_c.hex(), "algorithm": "AES-CCM-16-64-128"}))
        secret_file = d / "secret.json"
        secret_file.write_text(json.dumps({"secret_hex": secret.hex(), "salt_hex": salt.hex()}))
        secret_file.chmod(0o600)
        return FilesystemSecurityContext(str(d))

    # ---- after registration ----------------------------------------------------------------------------

    async def request(self, peer_id: str, code: aiocoap.numbers.Code, path: str, payload: bytes = b"",
                      protected: bool = True) -> aiocoap.Message:
        """A request to a registered device through its OSCORE context (protected=False: without it)."""
        assert self.ctx is not None
        base = self.uris[peer_id]
        if protected:
            self.ctx.client_credentials[base + "/*"] = self.contexts[peer_id]
        else:
            self.ctx.client_credentials.pop(base + "/*", None)
        try:
            return await self.ctx.request(aiocoap.Message(code=code, uri=base + path, payload=payload)).response
        finally:
            self.ctx.client_credentials[base + "/*"] = self.contexts[peer_id]


class _Trigger(aiocoap.resource.Resource):
    def __init__(self, controller: Controller):
        super().__init__()
        self.controller = controller

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        try:
            path = request.payload.decode("ascii")
        except UnicodeDecodeError:
            return aiocoap.Message(code=aiocoap.BAD_REQUEST)
        if not path.startswith("/") or len(path) > 64 or "?" in path or "//" in path:
            return aiocoap.Message(code=aiocoap.BAD_REQUEST)
        self.controller.trigger(request.remote.uri_base, path)
        return aiocoap.Message(code=aiocoap.CHANGED)  # suppressed by the device's No-Response
