-- Marks a dead run's row `abandoned`, if it is still `running`.
UPDATE scorer.runs SET status = 'abandoned', finished_at = $2::timestamptz, error = $3
WHERE run_id = $1::uuid AND status = 'running'
