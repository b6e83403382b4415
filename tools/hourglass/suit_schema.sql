-- The SUIT update server's state (hourglass.suit_store). Each migration is a block after a
-- "-- migration N" line; a database at PRAGMA user_version N gets the blocks after N, in order, in one
-- transaction each. Never edit a released block: add the next one.

-- migration 1
CREATE TABLE devices (
    id         TEXT PRIMARY KEY,
    address    TEXT,                -- host:port of its CoAP endpoint (push), or NULL (it polls)
    last_seen  REAL
);
CREATE TABLE campaigns (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    envelope   BLOB NOT NULL,
    digest     BLOB NOT NULL,       -- SHA-256 of the bstr-wrapped manifest
    seq        INTEGER NOT NULL,    -- manifest sequence number
    key        BLOB NOT NULL,       -- the COSE_Key the envelope verified with (public part)
    mode       TEXT NOT NULL CHECK (mode IN ('push', 'poll')),
    created    REAL NOT NULL
);
CREATE TABLE payloads (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    name        TEXT NOT NULL,      -- served at /suit/p/<campaign>/<name>
    path        TEXT NOT NULL,      -- read from disk block by block
    size        INTEGER NOT NULL,
    sha256      BLOB NOT NULL,
    PRIMARY KEY (campaign_id, name)
);
CREATE TABLE targets (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    device_id   TEXT NOT NULL REFERENCES devices(id),
    state       TEXT NOT NULL,      -- pending, triggered, fetching, installed, confirmed, failed, unreachable
    bytes_done  INTEGER NOT NULL DEFAULT 0,
    bytes_total INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try    REAL NOT NULL DEFAULT 0,
    message     TEXT NOT NULL DEFAULT '',
    updated     REAL NOT NULL,
    PRIMARY KEY (campaign_id, device_id)
);
CREATE TABLE reports (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices(id),
    campaign_id INTEGER REFERENCES campaigns(id),
    seq         INTEGER,
    ok          INTEGER NOT NULL,
    reason      INTEGER NOT NULL,
    message     TEXT NOT NULL,
    phase       TEXT NOT NULL,
    suit_report BLOB,               -- the device's draft-ietf-suit-report record, as sent
    received    REAL NOT NULL
);
CREATE INDEX reports_by_device ON reports (device_id, received);

-- migration 2
-- when each phase of a target's update ended (time.time()), for the per-phase push-to-confirmed breakdown
ALTER TABLE targets ADD COLUMN triggered_at REAL;    -- the trigger went out (the last try)
ALTER TABLE targets ADD COLUMN fetch_started REAL;   -- the first payload block was served
ALTER TABLE targets ADD COLUMN fetched_at REAL;      -- the last payload block was served
ALTER TABLE targets ADD COLUMN installed_at REAL;    -- the device reported its install (phase restart)
ALTER TABLE targets ADD COLUMN confirmed_at REAL;    -- the device reported the new image confirmed
ALTER TABLE reports ADD COLUMN timing TEXT;          -- the device's own {phase: ms}, JSON

-- migration 3
-- the device's random id of each report: a report it sent again (its answer lost) is recorded once
ALTER TABLE reports ADD COLUMN report_id BLOB;
CREATE UNIQUE INDEX reports_once ON reports (device_id, report_id);
