-- As sql/postgres/migrations/0003: heartbeat_at, and the `cancelled` and `abandoned` statuses.
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt.
CREATE TABLE scorer_runs_new (
    run_id          TEXT PRIMARY KEY,
    job             TEXT NOT NULL,
    logical_date    TEXT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'abandoned')),
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
    error           TEXT,
    gpu_name        TEXT,
    heartbeat_at    TEXT
);
INSERT INTO scorer_runs_new
SELECT run_id, job, logical_date, status, started_at, finished_at, output_table, rows_read,
       rows_scored, rows_written, rows_rejected, stage_seconds, inputs, model_name, model_version,
       model_sha256, device, score_stats, scorer_version, host, error, gpu_name,
       coalesce(finished_at, started_at)
FROM scorer_runs;
DROP TABLE scorer_runs;
ALTER TABLE scorer_runs_new RENAME TO scorer_runs;
CREATE INDEX scorer_runs_job_date ON scorer_runs (job, logical_date, started_at);
