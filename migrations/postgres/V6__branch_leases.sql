-- Which replica owns each branch, until when, and under which epoch (the fencing token).
-- A lease is taken by a conditional upsert that bumps the epoch; the journal's writer checks
-- the appending owner's epoch against this row, under a share lock, in every commit.
CREATE TABLE branch_leases (
    branch     text PRIMARY KEY,
    owner      text NOT NULL,
    -- Where the owner answers forwarded commands (host:port).
    address    text NOT NULL,
    epoch      bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
