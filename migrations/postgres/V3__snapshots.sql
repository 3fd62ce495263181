-- Each branch's latest snapshot: its open orders and configuration as of a position, written
-- by the branch actor every few thousand events. Recovery reads it and only the events after
-- it, so restart time does not grow with the branch's history.
CREATE TABLE snapshots (
    branch   text        PRIMARY KEY,
    position bigint      NOT NULL,
    body     bytea       NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
