"""The SUIT update server (hourglass.suit_server, hourglass.suit_store) against hostile or wrong input, its
storage migrations, and the CLI: aiocoap clients as the devices."""
from __future__ import annotations

import asyncio
import sqlite3

import aiocoap
import cbor2
import pytest

from hourglass import cli
from hourglass.common import UserError
from hourglass.suit_store import Store, migrations
from suit_ota_common import Fleet, build, payload, write_key


def _counts(store: Store) -> dict[str, int]:
    return {t: store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("campaigns", "payloads", "targets", "devices", "reports")}


def test_a_manifest_that_does_not_verify_with_the_campaign_key_stores_nothing(tmp_path):
    key, _ = write_key(tmp_path, "k")
    other, _ = write_key(tmp_path, "o")
    (tmp_path / "p.bin").write_bytes(payload(100, 1))
    env = build(tmp_path, "e", 1, [{"id": ["p.bin"], "file": "p.bin", "uri": "coap://h/suit/p/c/p"}], other)
    c = Fleet(tmp_path).campaigns
    with pytest.raises(UserError, match="does not verify with the campaign's key"):
        c.push("c", env, cbor2.loads(key.read_bytes()), {"p": tmp_path / "p.bin"}, {"d1": None})
    with pytest.raises(UserError, match="not a SUIT envelope|not CBOR"):
        c.push("c", b"\xff\x00", cbor2.loads(key.read_bytes()), {}, {"d1": None})
    good = build(tmp_path, "g", 1, [{"id": ["p.bin"], "file": "p.bin", "uri": "coap://h/suit/p/c/p"}], key)
    with pytest.raises(UserError, match="no file"):
        c.push("c", good, cbor2.loads(key.read_bytes()), {"p": tmp_path / "missing.bin"}, {"d1": None})
    with pytest.raises(UserError, match="not HOST:PORT"):
        c.push("c", good, cbor2.loads(key.read_bytes()), {"p": tmp_path / "p.bin"}, {"d1": "nowhere"})
    assert set(_counts(c.store).values()) == {0}
    c.push("c", good, cbor2.loads(key.read_bytes()), {"p": tmp_path / "p.bin"}, {"d1": None})
    with pytest.raises(UserError, match="exists"):
        c.push("c", good, cbor2.loads(key.read_bytes()), {"p": tmp_path / "p.bin"}, {"d1": None})
    assert _counts(c.store) == {"campaigns": 1, "payloads": 1, "targets": 1, "devices": 1, "reports": 0}


def _poll_campaign(tmp_path, fleet, key):
    """Campaign "c": p.bin (sequence number 4) for device d1, served to a poll; its envelope."""
    env = build(tmp_path, "e", 4, [{"id": ["p.bin"], "file": "p.bin", "uri": fleet.uri("c", "p")}], key)
    fleet.campaigns.push("c", env, cbor2.loads(key.read_bytes()), {"p": tmp_path / "p.bin"}, {"d1": None},
                         mode="poll")
    return env

def test_reports_from_unknown_devices_and_malformed_reports_are_refused(tmp_path):
    key, _ = write_key(tmp_path, "k")
    (tmp_path / "p.bin").write_bytes(payload(3000, 2))

    async def run():
        fleet = await Fleet(tmp_path).start()
        env = _poll_campaign(tmp_path, fleet, key)
        ctx = await aiocoap.Context.create_client_context()
        base = f"coap://127.0.0.1:{fleet.port}"

        async def post(body):
            return await ctx.request(aiocoap.Message(code=aiocoap.POST, uri=base + "/suit/report",
                                                     payload=body)).response

        async def get(path, **kw):
            return await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=base + path, **kw)).response
        try:
            ok = {1: b"d1", 2: 4, 3: True, 4: 0, 5: "confirmed", 6: "confirmed"}
            r = await post(cbor2.dumps({**ok, 1: b"intruder"}))
            assert r.code == aiocoap.NOT_FOUND and b"unknown device intruder" in r.payload
            for bad in (b"\xff", cbor2.dumps([1, 2]), cbor2.dumps({**ok, 3: "yes"}), cbor2.dumps({1: b"d1"}),
                        cbor2.dumps({**ok, 7: "not bytes"}), cbor2.dumps({**ok, 1: b"\xff\xfe"}),
                        cbor2.dumps({**ok, 8: [1]}), cbor2.dumps({**ok, 8: {"install": -1}}),
                        cbor2.dumps({**ok, 8: {"install": True}}), cbor2.dumps({**ok, 8: {1: 5}})):
                r = await post(bad)
                assert r.code == aiocoap.BAD_REQUEST, (bad, r)
            assert fleet.campaigns.reports() == []
            r = await post(cbor2.dumps({**ok, 8: {"health": 12}}))
            assert r.code == aiocoap.CHANGED
            assert fleet.campaigns.status("c")[0]["state"] == "confirmed"
            assert fleet.campaigns.reports()[0]["timing"] == '{"health": 12}'
            # unknown campaign or payload, a block past the end
            assert (await get("/suit/m/nope")).code == aiocoap.NOT_FOUND
            assert (await get("/suit/p/c/nope")).code == aiocoap.NOT_FOUND
            from aiocoap.optiontypes import BlockOption
            r = await get("/suit/p/c/p", block2=BlockOption.BlockwiseTuple(99, False, 6))
            assert r.code == aiocoap.BAD_OPTION
            # the whole payload block-wise (aiocoap reassembles), and the manifest's ETag validation
            r = await get("/suit/p/c/p")
            assert r.payload == (tmp_path / "p.bin").read_bytes()
            m = await get("/suit/m/c")
            assert m.payload == env and m.opt.etag
            assert (await get("/suit/m/c", etag=m.opt.etag)).code == aiocoap.VALID
        finally:
            await ctx.shutdown()
            await fleet.stop()
    asyncio.run(run())


def test_unreachable_devices_are_retried_with_backoff_then_given_up(tmp_path):
    key, _ = write_key(tmp_path, "k")
    (tmp_path / "p.bin").write_bytes(payload(100, 3))

    async def run():
        fleet = await Fleet(tmp_path).start(backoff=0.2, attempts=3)
        try:
            env = build(tmp_path, "e", 1, [{"id": ["p.bin"], "file": "p.bin", "uri": fleet.uri("c", "p")}], key)
            from hourglass.common import free_udp_port
            fleet.campaigns.push("c", env, cbor2.loads(key.read_bytes()), {"p": tmp_path / "p.bin"},
                                 {"gone": f"127.0.0.1:{free_udp_port()}"})
            row = await fleet.wait_state("c", "gone", ("unreachable",), 120)
            assert row["attempts"] == 3 and "unreachable after 3 tries" in row["message"]
        finally:
            await fleet.stop()
    asyncio.run(run())


def test_migrations_are_numbered_and_applied_once(tmp_path):
    numbers = [n for n, _ in migrations()]
    assert numbers == list(range(1, len(numbers) + 1))
    s = Store(tmp_path / "a.db")
    assert s.version == numbers[-1]
    s.close()
    s = Store(tmp_path / "a.db")  # opening again applies nothing twice
    assert s.version == numbers[-1]
    with pytest.raises(ValueError):
        migrations("-- migration 1\nSELECT 1;\n-- migration 3\nSELECT 1;\n")
    with pytest.raises(ValueError, match="target fields"):
        s.update_target(1, "x", owner="me")
    with pytest.raises(ValueError, match="moments"):
        s.mark(1, "x", "lunch_at")
    with pytest.raises(sqlite3.IntegrityError):
        s.db.execute("INSERT INTO campaigns (name, envelope, digest, seq, key, mode, created) "
                     "VALUES ('x', x'00', x'00', 1, x'00', 'sideways', 0)")


def test_a_version_1_database_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(migrations()[0][1] + "PRAGMA user_version = 1;")
    db.execute("INSERT INTO devices (id, address) VALUES ('d1', NULL)")
    db.execute("INSERT INTO reports (device_id, seq, ok, reason, message, phase, received) "
               "VALUES ('d1', 1, 1, 0, 'confirmed', 'confirmed', 0)")
    db.commit()
    db.close()
    s = Store(path)
    assert s.version == len(migrations())
    (r,) = s.reports("d1")
    assert r["message"] == "confirmed" and r["timing"] is None
    s.close()


def test_cli_push_status_and_report(tmp_path, capsys):
    key, _ = write_key(tmp_path, "k")
    (tmp_path / "p.bin").write_bytes(payload(100, 4))
    env = build(tmp_path, "e", 1, [{"id": ["p.bin"], "file": "p.bin", "uri": "coap://h/suit/p/c/p"}], key)
    db = str(tmp_path / "cli.db")
    assert cli.main(["suit", "push", "c", str(tmp_path / "e.suit"), "-k", str(key), "--db", db,
                     "--payload", f"p={tmp_path / 'p.bin'}", "--device", "d1", "--poll"]) == 0
    assert "campaign c (#1): 1 device(s), poll" in capsys.readouterr().out
    assert cli.main(["suit", "status", "--db", db]) == 0
    assert "d1" in capsys.readouterr().out and env
    assert cli.main(["suit", "report", "--db", db, "--device", "nobody"]) == 1
    assert "hourglass suit: unknown device nobody" in capsys.readouterr().err


def test_a_report_sent_again_is_recorded_once_and_a_late_one_leaves_a_finished_update_alone(tmp_path):
    """A device sends a report again when it did not get the answer (the answer was lost, or the report was
    kept across a restart): under the same report id (key 9) it is recorded once, answered 2.04 both times. A
    report of an earlier phase that arrives after the update failed (sent again late) is recorded but does
    not move the target back. A report the database cannot take at once (locked) gets 5.03, not 5.00: the
    device sends it again."""
    key, _ = write_key(tmp_path, "k")
    (tmp_path / "p.bin").write_bytes(payload(100, 4))

    async def run():
        fleet = await Fleet(tmp_path).start()
        _poll_campaign(tmp_path, fleet, key)
        ctx = await aiocoap.Context.create_client_context()

        async def post(body):
            return await ctx.request(aiocoap.Message(code=aiocoap.POST, uri=f"coap://127.0.0.1:{fleet.port}"
                                                     "/suit/report", payload=cbor2.dumps(body))).response
        try:
            failed = {1: b"d1", 2: 4, 3: False, 4: 11, 5: "rolled back: reset", 6: "rolled back", 9: b"\x01\x02"}
            for _ in range(2):
                assert (await post(failed)).code == aiocoap.CHANGED
            assert [r["message"] for r in fleet.campaigns.reports("d1")] == ["rolled back: reset"]
            late = {1: b"d1", 2: 4, 3: True, 4: 0, 5: "installed; restarted", 6: "restart", 9: b"\x03"}
            assert (await post(late)).code == aiocoap.CHANGED
            assert len(fleet.campaigns.reports("d1")) == 2
            assert fleet.campaigns.status("c")[0]["state"] == "failed"
            assert (await post({**failed, 9: "text"})).code == aiocoap.BAD_REQUEST

            lock = sqlite3.connect(tmp_path / "fleet.db", isolation_level=None)
            fleet.store.db.execute("PRAGMA busy_timeout = 20")  # (ms: the server does not wait 10 s in a test)
            lock.execute("BEGIN EXCLUSIVE")
            try:
                r = await post({**failed, 9: b"\x04"})
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            assert r.code == aiocoap.SERVICE_UNAVAILABLE, r
            assert len(fleet.campaigns.reports("d1")) == 2
            assert (await post({**failed, 9: b"\x04"})).code == aiocoap.CHANGED
            assert len(fleet.campaigns.reports("d1")) == 3
        finally:
            await ctx.shutdown()
            await fleet.stop()
    asyncio.run(run())
