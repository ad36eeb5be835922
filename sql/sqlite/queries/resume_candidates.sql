-- Registered runs of a job, date and output that ended without succeeding, newest first.
SELECT r.run_id, r.model_sha256, r.inputs_digest, r.scorer_version
FROM scorer_resume_runs r JOIN scorer_runs l ON l.run_id = r.run_id
WHERE r.job = ?1 AND r.logical_date = ?2 AND r.output = ?3 AND r.run_id <> ?4
  AND l.status IN ('failed', 'cancelled', 'abandoned')
ORDER BY l.started_at DESC
