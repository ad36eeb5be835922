-- Runs still marked `running` (of job $1, or of every job when $1 is NULL), with the seconds
-- since their last heartbeat.
SELECT run_id::text, job, logical_date::text, output_table, host,
       EXTRACT(EPOCH FROM (now() - coalesce(heartbeat_at, started_at)))::float8,
       shard_index::bigint, shard_count::bigint
FROM scorer.runs
WHERE status = 'running' AND ($1::text IS NULL OR job = $1::text)
ORDER BY started_at
