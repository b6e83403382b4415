"""The EAP-NOOB server's registrations in SQLite: the registry behind `noob_server.NoobServer`, the OSCORE sessions
the CoAP-EAP controller derived, and each peer's history. The schema is `SCHEMA`, here and nowhere else.

Each call opens its own short transaction, so `hourglass noob serve`, the CLI commands and the web page share one
database file at once (SQLite's WAL mode lets readers go on while the server writes).
"""
from __future__ import annotations

import base64
import json
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hourglass.noob_server import Association

SCHEMA = """
CREATE TABLE IF NOT EXISTS peers (
    peer_id   TEXT PRIMARY KEY,
    state     INTEGER NOT NULL,        -- PeerState 0-4 (RFC 9140 Figure 1)
    record    TEXT NOT NULL,           -- the Association as JSON (binary values base64)
    address   TEXT,                    -- the CoAP address the device last announced itself from
    created   REAL NOT NULL,
    updated   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (  -- the OSCORE context of a registered device (RFC 9820)
    peer_id   TEXT PRIMARY KEY REFERENCES peers(peer_id) ON DELETE CASCADE,
    secret    BLOB NOT NULL,
    salt      BLOB NOT NULL,
    rid_c     BLOB NOT NULL,           -- the controller's Recipient ID (the device's Sender ID)
    rid_i     BLOB NOT NULL,           -- the device's Recipient ID
    suite     INTEGER NOT NULL,
    expires   REAL                     -- NULL: no lifetime
);
CREATE TABLE IF NOT EXISTS history (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    peer_id   TEXT NOT NULL,
    at        REAL NOT NULL,
    event     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_peer ON history(peer_id, id);
CREATE TABLE IF NOT EXISTS config (
    name      TEXT PRIMARY KEY,
    value     TEXT NOT NULL
);
"""

STATE_NAMES = {0: "Unregistered", 1: "Waiting for OOB", 2: "OOB Received", 3: "Reconnecting", 4: "Registered"}


def _encode(assoc: Association) -> str:
    d = asdict(assoc)
    for k in ("z", "received_noob", "kz"):
        if d[k] is not None:
            d[k] = base64.b64encode(d[k]).decode()
    d["noobs"] = [[base64.b64encode(n).decode(), t] for n, t in d["noobs"]]
    return json.dumps(d)


def _decode(text: str) -> Association:
    d: dict[str, Any] = json.loads(text)
    for k in ("z", "received_noob", "kz"):
        if d[k] is not None:
            d[k] = base64.b64decode(d[k])
    d["noobs"] = [(base64.b64decode(n), t) for n, t in d["noobs"]]
    return Association(**d)


class Database:
    """The registry (get/put/delete of Associations, as `noob_server.MemoryRegistry`) and the rest."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        db = sqlite3.connect(self.path, timeout=10)
        try:
            db.executescript(SCHEMA)
        finally:
            db.close()

    def _db(self) -> _Closing:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.row_factory = sqlite3.Row
        return _Closing(db)

    # ---- the registry --------------------------------------------------------------------------------

    def get(self, peer_id: str) -> Association | None:
        with self._db() as db:
            row = db.execute("SELECT record FROM peers WHERE peer_id = ?", (peer_id,)).fetchone()
        return _decode(row["record"]) if row else None

    def put(self, assoc: Association) -> None:
        now = time.time()
        with self._db() as db:
            old = db.execute("SELECT state FROM peers WHERE peer_id = ?", (assoc.peer_id,)).fetchone()
            db.execute("INSERT INTO peers (peer_id, state, record, created, updated) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT(peer_id) DO UPDATE SET state = excluded.state, record = excluded.record, "
                       "updated = excluded.updated", (assoc.peer_id, assoc.state, _encode(assoc), now, now))
            if old is None or old["state"] != assoc.state:
                self._log(db, assoc.peer_id, "state " + STATE_NAMES.get(assoc.state, str(assoc.state)))

    def delete(self, peer_id: str) -> None:
        with self._db() as db:
            n = db.execute("DELETE FROM peers WHERE peer_id = ?", (peer_id,)).rowcount
            if n:
                self._log(db, peer_id, "forgotten")

    # ---- the rest ------------------------------------------------------------------------------------

    @staticmethod
    def _log(db: sqlite3.Connection, peer_id: str, event: str) -> None:
        db.execute("INSERT INTO history (peer_id, at, event) VALUES (?, ?, ?)", (peer_id, time.time(), event))

    def log(self, peer_id: str, event: str) -> None:
        with self._db() as db:
            self._log(db, peer_id, event)

    def set_address(self, peer_id: str, address: str) -> None:
        with self._db() as db:
            db.execute("UPDATE peers SET address = ? WHERE peer_id = ?", (address, peer_id))

    def peers(self) -> list[dict[str, Any]]:
        """Every peer: id, state, state name, address, created, updated, whether it has an OSCORE session, the
        OOB directions it can do (Dirp)."""
        with self._db() as db:
            rows = db.execute("SELECT p.peer_id, p.state, p.address, p.created, p.updated, p.record, "
                              "s.expires, s.peer_id IS NOT NULL AS has_session FROM peers p "
                              "LEFT JOIN sessions s ON s.peer_id = p.peer_id ORDER BY p.created").fetchall()
        out = []
        for r in rows:
            record = json.loads(r["record"])
            out.append({"peer_id": r["peer_id"], "state": r["state"], "state_name": STATE_NAMES.get(r["state"]),
                        "address": r["address"], "created": r["created"], "updated": r["updated"],
                        "session": bool(r["has_session"]), "expires": r["expires"],
                        "dirp": int(record["initial"].get("Dirp", "0") or 0),
                        "peer_info": record["initial"].get("PeerInfo", "")})
        return out

    def history(self, peer_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        with self._db() as db:
            if peer_id is None:
                rows = db.execute("SELECT peer_id, at, event FROM history ORDER BY id DESC LIMIT ?", (limit,))
            else:
                rows = db.execute("SELECT peer_id, at, event FROM history WHERE peer_id = ? ORDER BY id DESC "
                                  "LIMIT ?", (peer_id, limit))
            return [dict(r) for r in rows.fetchall()][::-1]

    def put_session(self, peer_id: str, secret: bytes, salt: bytes, rid_c: bytes, rid_i: bytes, suite: int,
                    expires: float | None) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (peer_id, secret, salt, rid_c, rid_i, suite, expires))
            self._log(db, peer_id, "OSCORE context derived" + (f", lifetime until {expires:.0f}" if expires else ""))

    def session(self, peer_id: str) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM sessions WHERE peer_id = ?", (peer_id,)).fetchone()
        return dict(row) if row else None

    def set_config(self, name: str, value: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO config VALUES (?, ?)", (name, value))

    def config(self, name: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT value FROM config WHERE name = ?", (name,)).fetchone()
        return row["value"] if row else None


class _Closing:
    """A connection used as `with`: one transaction (BEGIN IMMEDIATE ... COMMIT/ROLLBACK), then closed."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.db.close()
