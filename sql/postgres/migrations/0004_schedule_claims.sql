-- `scorer schedule`: one row per (job, firing). A scheduler claims a firing by inserting its row
-- (or by taking over one whose lease expired) and renews the lease while the run lives, so
-- several schedulers on this database never run one firing twice, and a dead one's firing is
-- taken over once its lease runs out.
CREATE TABLE scorer.claims (
    job          text        NOT NULL,
    -- when the firing was due (the end of its data interval)
    fire_at      timestamptz NOT NULL,
    -- the date it scores (the start of its data interval, in the job's time zone)
    logical_date date        NOT NULL,
    -- claimed: being run, or waiting for a retry; done: finished for good
    state        text        NOT NULL CHECK (state IN ('claimed', 'done')),
    -- the scheduler holding it ('' while it waits for a retry)
    holder       text        NOT NULL,
    lease_until  timestamptz NOT NULL,
    attempts     integer     NOT NULL,
    claimed_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    run_id       uuid,
    -- succeeded | failed | skipped, with the reason; or why it waits for a retry
    outcome      text,
    PRIMARY KEY (job, fire_at)
);
CREATE INDEX claims_open ON scorer.claims (job, fire_at) WHERE state = 'claimed';
