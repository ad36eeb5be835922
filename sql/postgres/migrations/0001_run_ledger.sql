-- The run ledger: one row per `scorer run`, written when the run starts and updated when it ends.
-- Result tables live wherever job files say; the ledger always lives in the `scorer` schema.
CREATE SCHEMA IF NOT EXISTS scorer;

CREATE TABLE scorer.runs (
    run_id          uuid        PRIMARY KEY,
    job             text        NOT NULL,
    logical_date    date        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    output_table    text        NOT NULL,
    rows_read       bigint,
    rows_scored     bigint,
    rows_written    bigint,
    rows_rejected   bigint,
    -- {"plan": s, "read": s, "score": s, "write": s, "commit": s, "total": s}
    stage_seconds   jsonb,
    -- [{"url": ..., "size": ..., "etag": ..., "last_modified": ...}, ...]
    inputs          jsonb,
    model_name      text,
    model_version   text,
    model_sha256    text,
    device          text,
    -- {"<column>": {"count": n, "mean": x, "min": x, "max": x, "nan": n}, ...}
    score_stats     jsonb,
    scorer_version  text        NOT NULL,
    host            text        NOT NULL,
    error           text
);

CREATE INDEX runs_job_date ON scorer.runs (job, logical_date, started_at DESC);
