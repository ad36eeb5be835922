-- Registered runs of a job, date and output that ended without succeeding, newest first.
SELECT r.run_id::text, r.model_sha256, r.inputs_digest, r.scorer_version
FROM scorer.resume_runs r JOIN scorer.runs l ON l.run_id = r.run_id
WHERE r.job = $1 AND r.logical_date = $2::date AND r.output = $3 AND r.run_id <> $4::uuid
  AND l.status IN ('failed', 'cancelled', 'abandoned')
ORDER BY l.started_at DESC
