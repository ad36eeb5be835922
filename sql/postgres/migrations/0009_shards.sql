-- Sharded runs (src/shard): a shard run records its shard and attempt, and once its attempt is
-- published every shard row of it records the date's total rows. The attempts of a date, and the
-- parts their shards staged (what the publishing shard needs: staging tables or files, counts,
-- rejected rows).
ALTER TABLE scorer.runs ADD COLUMN shard_index integer;
ALTER TABLE scorer.runs ADD COLUMN shard_count integer;
ALTER TABLE scorer.runs ADD COLUMN attempt text;
ALTER TABLE scorer.runs ADD COLUMN published_rows bigint;
CREATE INDEX runs_attempt ON scorer.runs (attempt) WHERE attempt IS NOT NULL;
ALTER TABLE scorer.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE scorer.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'abandoned',
                      'staged', 'skipped', 'superseded'));

CREATE TABLE scorer.shard_attempts (
    attempt       text PRIMARY KEY,
    job           text NOT NULL,
    logical_date  date NOT NULL,
    output        text NOT NULL,
    shard_count   integer NOT NULL,
    label         text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    published_by  uuid,
    superseded_by text
);
CREATE INDEX shard_attempts_output_date ON scorer.shard_attempts (output, logical_date);

CREATE TABLE scorer.shard_parts (
    attempt      text NOT NULL REFERENCES scorer.shard_attempts ON DELETE CASCADE,
    shard_index  integer NOT NULL,
    run_id       uuid NOT NULL,
    rows         bigint NOT NULL,
    body         text NOT NULL,
    staged_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (attempt, shard_index)
);
