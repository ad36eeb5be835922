-- The run ledger for the embedded default; same columns as sql/postgres, SQLite types.
CREATE TABLE scorer_runs (
    run_id          TEXT PRIMARY KEY,
    job             TEXT NOT NULL,
    logical_date    TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    output_table    TEXT NOT NULL,
    rows_read       INTEGER,
    rows_scored     INTEGER,
    rows_written    INTEGER,
    rows_rejected   INTEGER,
    stage_seconds   TEXT,
    inputs          TEXT,
    model_name      TEXT,
    model_version   TEXT,
    model_sha256    TEXT,
    device          TEXT,
    score_stats     TEXT,
    scorer_version  TEXT NOT NULL,
    host            TEXT NOT NULL,
    error           TEXT
);

CREATE INDEX scorer_runs_job_date ON scorer_runs (job, logical_date, started_at);
