-- Resume (src/resume): a run writing a table registers what it reads and with which model, and
-- commits its staged rows in checkpoints, each naming the input row ranges it holds. A later run
-- of the same job, date and output with the same model and input adopts the staging of a run that
-- died, and reads only what is missing.
CREATE TABLE scorer.resume_runs (
    run_id          uuid PRIMARY KEY,
    job             text NOT NULL,
    logical_date    date NOT NULL,
    output          text NOT NULL,
    model_sha256    text NOT NULL,
    inputs_digest   text NOT NULL,
    scorer_version  text NOT NULL
);
CREATE INDEX resume_runs_job_date ON scorer.resume_runs (job, logical_date);
CREATE TABLE scorer.resume_checkpoints (
    run_id  uuid NOT NULL,
    seq     bigint NOT NULL,
    body    text NOT NULL,
    PRIMARY KEY (run_id, seq)
);
-- Which run's staged rows a run adopted, and how many.
ALTER TABLE scorer.runs ADD COLUMN resumed_from uuid;
ALTER TABLE scorer.runs ADD COLUMN rows_resumed bigint;
