-- Runs still marked `running` (of job ?1, or of every job when ?1 is NULL), with the seconds
-- since their last heartbeat.
SELECT run_id, job, logical_date, output_table, host,
       (julianday('now') - julianday(coalesce(heartbeat_at, started_at))) * 86400.0,
       shard_index, shard_count
FROM scorer_runs
WHERE status = 'running' AND (?1 IS NULL OR job = ?1)
ORDER BY started_at
