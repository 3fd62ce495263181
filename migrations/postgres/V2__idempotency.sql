-- Idempotency keys, stored in the same transaction as the events their request appended.
-- Kept at least 7 days (tablets replay after long offline periods), then forgotten.
CREATE TABLE idempotency_keys (
    branch      text        NOT NULL,
    key         text        NOT NULL,
    fingerprint text        NOT NULL,
    stream      text        NOT NULL,
    seq         bigint      NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (branch, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (at);
