-- A run's checkpoints, in the order they committed.
SELECT seq, body FROM scorer.resume_checkpoints WHERE run_id = $1::uuid ORDER BY seq
