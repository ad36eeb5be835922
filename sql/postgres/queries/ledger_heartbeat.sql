-- The running process is alive.
UPDATE scorer.runs SET heartbeat_at = $2::timestamptz WHERE run_id = $1::uuid AND status = 'running'
