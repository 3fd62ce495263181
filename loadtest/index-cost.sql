-- What the journal's index choices cost Postgres: 300,000 rows inserted into tables shaped like
-- `events` and `idempotency_keys`, with the indexes before (V1, V2) and after (V5) migration V5.
-- Run against a scratch database, a few times, and compare the timings:
--   createdb -U postgres -h 127.0.0.1 index_cost
--   psql -U postgres -h 127.0.0.1 -d index_cost -q -f loadtest/index-cost.sql
\timing on
DROP TABLE IF EXISTS index_cost_events_before, index_cost_events_after,
                     index_cost_keys_before, index_cost_keys_after;
CREATE TABLE index_cost_events_before (
    branch text COLLATE "C", position bigint, stream text COLLATE "C", seq bigint,
    kind text COLLATE "C", body jsonb, at timestamptz, UNIQUE (stream, seq, at));
CREATE INDEX ON index_cost_events_before (branch, position);
CREATE INDEX ON index_cost_events_before (branch, kind, position);
CREATE TABLE index_cost_events_after (LIKE index_cost_events_before);
ALTER TABLE index_cost_events_after ADD UNIQUE (stream, seq, at);
CREATE INDEX ON index_cost_events_after (branch, position);
CREATE INDEX ON index_cost_events_after (branch, position) WHERE kind = 'order_opened';
CREATE TABLE index_cost_keys_before (
    branch text COLLATE "C", key text COLLATE "C", fingerprint text, stream text, seq bigint,
    at timestamptz, PRIMARY KEY (branch, key));
CREATE INDEX ON index_cost_keys_before (at);
CREATE TABLE index_cost_keys_after (LIKE index_cost_keys_before);
ALTER TABLE index_cost_keys_after ADD PRIMARY KEY (branch, key);
CREATE INDEX ON index_cost_keys_after USING brin (at);

-- The same rows for both shapes of each table.
\set events 'SELECT ''load-'' || (i % 20), i, ''order-'' || (i / 14), i % 14, (ARRAY[''order_opened'', ''lines_added'', ''course_fired'', ''ticket_started'', ''ticket_bumped'', ''lines_served'', ''order_closed''])[1 + i % 7], ''{"a": 1, "b": "xyz"}'', clock_timestamp() FROM generate_series(1, 300000) i'
\set keys 'SELECT ''load-'' || (i % 20), md5(i::text), ''fp'', ''order-'' || i, 1, clock_timestamp() FROM generate_series(1, 300000) i'

\echo events, by kind in a b-tree (before)
INSERT INTO index_cost_events_before :events;
\echo events, order_opened in a partial index (after)
INSERT INTO index_cost_events_after :events;
\echo keys, by age in a b-tree (before)
INSERT INTO index_cost_keys_before :keys;
\echo keys, by age in a BRIN index (after)
INSERT INTO index_cost_keys_after :keys;

DROP TABLE index_cost_events_before, index_cost_events_after,
           index_cost_keys_before, index_cost_keys_after;
