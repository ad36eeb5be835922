-- Marks a dead run's row `abandoned`, if it is still `running`.
UPDATE scorer_runs SET status = 'abandoned', finished_at = ?2, error = ?3
WHERE run_id = ?1 AND status = 'running'
