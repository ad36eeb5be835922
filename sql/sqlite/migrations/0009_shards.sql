-- As sql/postgres/migrations/0009: shard runs (their shard, attempt and published rows, and the
-- `staged`, `skipped` and `superseded` statuses), their attempts and the parts they staged.
-- SQLite cannot change a CHECK constraint in place, so the runs table is rebuilt.
CREATE TABLE scorer_runs_new (
    run_id          TEXT PRIMARY KEY,
    job             TEXT NOT NULL,
    logical_date    TEXT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'abandoned',
                                      'staged', 'skipped', 'superseded')),
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
    heartbeat_at    TEXT,
    storage_requests INTEGER,
    storage_errors  INTEGER,
    resumed_from    TEXT,
    rows_resumed    INTEGER,
    memory          TEXT,
    os_user         TEXT,
    job_sha256      TEXT,
    shard_index     INTEGER,
    shard_count     INTEGER,
    attempt         TEXT,
    published_rows  INTEGER
);
INSERT INTO scorer_runs_new (run_id, job, logical_date, status, started_at, finished_at, output_table, rows_read, rows_scored, rows_written, rows_rejected, stage_seconds, inputs, model_name, model_version, model_sha256, device, score_stats, scorer_version, host, error, gpu_name, heartbeat_at, storage_requests, storage_errors, resumed_from, rows_resumed, memory, os_user, job_sha256)
SELECT run_id, job, logical_date, status, started_at, finished_at, output_table, rows_read, rows_scored, rows_written, rows_rejected, stage_seconds, inputs, model_name, model_version, model_sha256, device, score_stats, scorer_version, host, error, gpu_name, heartbeat_at, storage_requests, storage_errors, resumed_from, rows_resumed, memory, os_user, job_sha256
FROM scorer_runs;
DROP TABLE scorer_runs;
ALTER TABLE scorer_runs_new RENAME TO scorer_runs;
CREATE INDEX scorer_runs_job_date ON scorer_runs (job, logical_date, started_at);
CREATE INDEX scorer_runs_attempt ON scorer_runs (attempt) WHERE attempt IS NOT NULL;

CREATE TABLE scorer_shard_attempts (
    attempt       TEXT PRIMARY KEY,
    job           TEXT NOT NULL,
    logical_date  TEXT NOT NULL,
    output        TEXT NOT NULL,
    shard_count   INTEGER NOT NULL,
    label         TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    published_at  TEXT,
    published_by  TEXT,
    superseded_by TEXT
);
CREATE INDEX scorer_shard_attempts_output_date ON scorer_shard_attempts (output, logical_date);

CREATE TABLE scorer_shard_parts (
    attempt      TEXT NOT NULL REFERENCES scorer_shard_attempts ON DELETE CASCADE,
    shard_index  INTEGER NOT NULL,
    run_id       TEXT NOT NULL,
    rows         INTEGER NOT NULL,
    body         TEXT NOT NULL,
    staged_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (attempt, shard_index)
);
