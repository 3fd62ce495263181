-- The embedded journal. Applied on every start; each statement is idempotent.
CREATE TABLE IF NOT EXISTS events (
    branch   TEXT    NOT NULL,
    position INTEGER NOT NULL,
    stream   TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    body     TEXT    NOT NULL,
    at       INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
    PRIMARY KEY (branch, position),
    UNIQUE (stream, seq)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS events_by_kind ON events (branch, kind, position);

CREATE TABLE IF NOT EXISTS streams (
    stream   TEXT    PRIMARY KEY,
    branch   TEXT    NOT NULL,
    last_seq INTEGER NOT NULL,
    closed   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS streams_open ON streams (branch, closed);

-- Idempotency keys, stored in the same transaction as the events their request appended.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    branch      TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    stream      TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
    PRIMARY KEY (branch, key)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (at);

-- Each branch's latest snapshot (open orders and configuration as of a position): recovery
-- reads it and only the events after it.
CREATE TABLE IF NOT EXISTS snapshots (
    branch   TEXT    PRIMARY KEY,
    position INTEGER NOT NULL,
    body     BLOB    NOT NULL
) WITHOUT ROWID;
