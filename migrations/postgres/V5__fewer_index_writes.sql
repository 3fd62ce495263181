-- Fewer index entries written a command: the journal's writer inserted five (three for the
-- event, two for its idempotency key), and index upkeep was the biggest share of the
-- database's CPU under load.

-- Events are looked up by kind only at recovery, for a branch's last `order_opened`: one
-- event in a dozen. A partial index holds just those.
DROP INDEX events_by_kind;
CREATE INDEX events_orders_opened ON events (branch, position) WHERE kind = 'order_opened';

-- Keys are inserted in time order and looked up by age only by the daily purge: a BRIN index
-- (the range of `at` in each run of table blocks) is a few pages and is rarely written.
DROP INDEX idempotency_keys_by_age;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys USING brin (at);
