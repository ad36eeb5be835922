-- A run writing a table registers what it reads and with which model (src/resume).
INSERT INTO scorer.resume_runs (run_id, job, logical_date, output, model_sha256, inputs_digest, scorer_version)
VALUES ($1::uuid, $2, $3::date, $4, $5, $6, $7)
