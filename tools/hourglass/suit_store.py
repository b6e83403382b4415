"""The SUIT update server's storage: every SQL statement of the server is in this module, behind `Store`.

SQLite (the standard library's sqlite3, WAL) is the backend: one file, schema and versioned migrations in
suit_schema.sql (PRAGMA user_version is the applied migration). The server and the CLI only call Store's
methods, so another backend (PostgreSQL for a fleet that outgrows one host) is a class with the same methods;
see README.md "SUIT update server".
"""
from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

SCHEMA = Path(__file__).with_name("suit_schema.sql")
# The moments a target's update passes (targets columns, migration 2), in order, and the phase each one ends.
# (The device starts its download as it answers the trigger: the answer can reach the server after the first
# block request, so the trigger phase ends at the first block.)
MOMENTS = ("triggered_at", "fetch_started", "fetched_at", "installed_at", "confirmed_at")
PHASES = (("trigger", "triggered_at", "fetch_started"), ("download", "fetch_started", "fetched_at"),
           ("install", "fetched_at", "installed_at"),
          ("restart+confirm", "installed_at", "confirmed_at"))
TARGET_STATES = ("pending", "triggered", "fetching", "installed", "confirmed", "failed", "unreachable")
FINAL_STATES = ("confirmed", "failed", "unreachable")


def migrations(text: str | None = None) -> list[tuple[int, str]]:
    """(number, SQL) of each migration block in the schema file, in order."""
    text = SCHEMA.read_text() if text is None else text
    parts = re.split(r"^-- migration (\d+)\s*$", text, flags=re.M)
    out = [(int(parts[i]), parts[i + 1]) for i in range(1, len(parts), 2)]
    if [n for n, _ in out] != list(range(1, len(out) + 1)):
        raise ValueError("schema migrations must be numbered 1, 2, 3, ...")
    return out


class Store:
    """path: the SQLite file (created and migrated on open)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    def close(self) -> None:
        self.db.close()

    @property
    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        for number, sql in migrations():
            if number <= self.version:
                continue
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in [s.strip() for s in sql.split(";") if s.strip()]:
                    self.db.execute(stmt)
                self.db.execute(f"PRAGMA user_version = {number}")
                self.db.execute("COMMIT")
            except Exception:
                self.db.execute("ROLLBACK")
                raise

    # ---- campaigns

    def add_campaign(self, name: str, envelope: bytes, digest: bytes, seq: int, key: bytes, mode: str,
                     payloads: list[tuple[str, str, int, bytes]], devices: list[tuple[str, str | None]]) -> int:
        """One transaction: the campaign, its payload files and its target devices (created or readdressed)."""
        now = time.time()
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute("INSERT INTO campaigns (name, envelope, digest, seq, key, mode, created) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", (name, envelope, digest, seq, key, mode, now))
            cid = cur.lastrowid
            for pname, path, size, sha in payloads:
                cur.execute("INSERT INTO payloads (campaign_id, name, path, size, sha256) VALUES (?, ?, ?, ?, ?)",
                            (cid, pname, path, size, sha))
            for dev, address in devices:
                cur.execute("INSERT INTO devices (id, address) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET "
                            "address = coalesce(excluded.address, devices.address)", (dev, address))
                cur.execute("INSERT INTO targets (campaign_id, device_id, state, updated) VALUES (?, ?, ?, ?)",
                            (cid, dev, "pending", now))
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise
        return cid

    def campaign(self, name: str) -> dict | None:
        row = self.db.execute("SELECT * FROM campaigns WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    def campaigns(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT id, name, seq, mode, created FROM campaigns ORDER BY id")]

    def payload(self, campaign: str, name: str) -> dict | None:
        row = self.db.execute("SELECT p.* FROM payloads p JOIN campaigns c ON c.id = p.campaign_id "
                              "WHERE c.name = ? AND p.name = ?", (campaign, name)).fetchone()
        return dict(row) if row else None

    # ---- devices and targets

    def device(self, device_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM devices WHERE id = ?", (device_id,)).fetchone()
        return dict(row) if row else None

    def seen(self, device_id: str) -> None:
        self.db.execute("UPDATE devices SET last_seen = ? WHERE id = ?", (time.time(), device_id))

    def targets(self, campaign_id: int) -> list[dict]:
        return [dict(r) for r in self.db.execute(
            "SELECT * FROM targets WHERE campaign_id = ? ORDER BY device_id", (campaign_id,))]

    def target_for(self, device_id: str, seq: int | None = None) -> dict | None:
        """The device's newest campaign target (with that sequence number, when given)."""
        q = ("SELECT t.*, c.seq, c.name FROM targets t JOIN campaigns c ON c.id = t.campaign_id "
             "WHERE t.device_id = ?")
        args: list = [device_id]
        if seq is not None:
            q += " AND c.seq = ?"
            args.append(seq)
        row = self.db.execute(q + " ORDER BY c.id DESC LIMIT 1", args).fetchone()
        return dict(row) if row else None

    def due_pushes(self, now: float) -> list[dict]:
        """Targets of push campaigns waiting for a trigger whose retry time has come."""
        return [dict(r) for r in self.db.execute(
            "SELECT t.campaign_id, t.device_id, t.attempts, d.address, c.envelope, c.name FROM targets t "
            "JOIN campaigns c ON c.id = t.campaign_id JOIN devices d ON d.id = t.device_id "
            "WHERE c.mode = 'push' AND t.state = 'pending' AND t.next_try <= ? AND d.address IS NOT NULL",
            (now,))]

    def update_target(self, campaign_id: int, device_id: str, **fields) -> None:
        allowed = {"state", "bytes_done", "bytes_total", "attempts", "next_try", "message"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"target fields are {sorted(allowed)}")
        if "state" in fields and fields["state"] not in TARGET_STATES:
            raise ValueError(f"unknown target state {fields['state']}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE targets SET {sets}, updated = ? WHERE campaign_id = ? AND device_id = ?",
                        (*fields.values(), time.time(), campaign_id, device_id))

    def mark(self, campaign_id: int, device_id: str, moment: str, first: bool = False) -> None:
        """Record now as a target's moment (one of MOMENTS); first=True keeps an earlier one."""
        if moment not in MOMENTS:
            raise ValueError(f"moments are {MOMENTS}")
        cond = f" AND {moment} IS NULL" if first else ""
        self.db.execute(f"UPDATE targets SET {moment} = ? WHERE campaign_id = ? AND device_id = ?{cond}",
                        (time.time(), campaign_id, device_id))

    # ---- reports

    def add_report(self, device_id: str, campaign_id: int | None, seq: int | None, ok: bool, reason: int,
                   message: str, phase: str, suit_report: bytes | None, timing: str | None = None,
                   report_id: bytes | None = None) -> int | None:
        """The new row's id; None when the device's report with that report_id is recorded already."""
        cur = self.db.execute(
            "INSERT INTO reports (device_id, campaign_id, seq, ok, reason, message, phase, suit_report, timing,"
            " report_id, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (device_id, campaign_id, seq, int(ok), reason, message, phase, suit_report, timing, report_id,
             time.time()))
        return cur.lastrowid if cur.rowcount else None

    def reports(self, device_id: str | None = None, limit: int = 100) -> list[dict]:
        q = "SELECT * FROM reports"
        args: list = []
        if device_id is not None:
            q += " WHERE device_id = ?"
            args.append(device_id)
        return [dict(r) for r in self.db.execute(q + " ORDER BY id DESC LIMIT ?", (*args, limit))][::-1]
