-- The running process is alive.
UPDATE scorer_runs SET heartbeat_at = ?2 WHERE run_id = ?1 AND status = 'running'
