-- The chain's journal. Applied by refinery at start-up (embedded in the binary).

-- One row per stream: its head. Appends compare-and-set `last_seq`, so two writers that both
-- believe they own a stream cannot both append the same seq: this row is what keeps
-- (stream, seq) unique across the monthly partitions of `events`.
CREATE TABLE streams (
    stream   text    PRIMARY KEY,
    branch   text    NOT NULL,
    last_seq bigint  NOT NULL,
    closed   boolean NOT NULL DEFAULT false
);
CREATE INDEX streams_open ON streams (branch) WHERE NOT closed;

-- Each branch's last position; appends allocate dense ranges from it under its row lock.
CREATE TABLE branch_heads (
    branch   text   PRIMARY KEY,
    position bigint NOT NULL
);

-- Every event, partitioned by month of `at` so old months can be detached or dropped.
-- Partitions are created ahead by the engine (see `ensure_partitions`).
CREATE TABLE events (
    branch   text        NOT NULL,
    position bigint      NOT NULL,
    stream   text        NOT NULL,
    seq      bigint      NOT NULL,
    kind     text        NOT NULL,
    body     jsonb       NOT NULL,
    at       timestamptz NOT NULL,
    UNIQUE (stream, seq, at)
) PARTITION BY RANGE (at);
CREATE INDEX events_by_position ON events (branch, position);
CREATE INDEX events_by_kind ON events (branch, kind, position);
