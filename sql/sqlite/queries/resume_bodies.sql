-- A run's checkpoints, in the order they committed.
SELECT seq, body FROM scorer_resume_checkpoints WHERE run_id = ?1 ORDER BY seq
