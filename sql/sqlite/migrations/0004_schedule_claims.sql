-- `scorer schedule`: one row per (job, firing); see sql/postgres/migrations/0004. Timestamps are
-- RFC 3339 text in UTC with milliseconds (`2026-11-25T02:00:00.000Z`), which sorts as time.
CREATE TABLE scorer_claims (
    job          TEXT    NOT NULL,
    fire_at      TEXT    NOT NULL,
    logical_date TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('claimed', 'done')),
    holder       TEXT    NOT NULL,
    lease_until  TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    claimed_at   TEXT    NOT NULL,
    finished_at  TEXT,
    run_id       TEXT,
    outcome      TEXT,
    PRIMARY KEY (job, fire_at)
);
CREATE INDEX scorer_claims_open ON scorer_claims (job, fire_at) WHERE state = 'claimed';
