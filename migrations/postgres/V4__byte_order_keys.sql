-- Branch, stream, kind and idempotency-key columns are identifiers, never text a person sorts:
-- compare them byte by byte. Under a database's linguistic collation (C.UTF-8, en_US.UTF-8…)
-- every index lookup and insert on them goes through strcoll; the journal's writer descends
-- about eight such indexes a command.
ALTER TABLE streams
    ALTER COLUMN stream TYPE text COLLATE "C",
    ALTER COLUMN branch TYPE text COLLATE "C";
ALTER TABLE branch_heads
    ALTER COLUMN branch TYPE text COLLATE "C";
ALTER TABLE events
    ALTER COLUMN branch TYPE text COLLATE "C",
    ALTER COLUMN stream TYPE text COLLATE "C",
    ALTER COLUMN kind TYPE text COLLATE "C";
ALTER TABLE idempotency_keys
    ALTER COLUMN branch TYPE text COLLATE "C",
    ALTER COLUMN key TYPE text COLLATE "C",
    ALTER COLUMN stream TYPE text COLLATE "C";
ALTER TABLE snapshots
    ALTER COLUMN branch TYPE text COLLATE "C";
