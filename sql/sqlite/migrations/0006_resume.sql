-- As sql/postgres/migrations/0006: what a run reads, and its staged rows' checkpoints.
CREATE TABLE scorer_resume_runs (
    run_id          TEXT PRIMARY KEY,
    job             TEXT NOT NULL,
    logical_date    TEXT NOT NULL,
    output          TEXT NOT NULL,
    model_sha256    TEXT NOT NULL,
    inputs_digest   TEXT NOT NULL,
    scorer_version  TEXT NOT NULL
);
CREATE INDEX scorer_resume_runs_job_date ON scorer_resume_runs (job, logical_date);
CREATE TABLE scorer_resume_checkpoints (
    run_id  TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
-- Which run's staged rows a run adopted, and how many.
ALTER TABLE scorer_runs ADD COLUMN resumed_from TEXT;
ALTER TABLE scorer_runs ADD COLUMN rows_resumed INTEGER;
