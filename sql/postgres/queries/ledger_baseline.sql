-- The drift baseline of job $1: its newest succeeded unsharded run's statistics.
SELECT run_id::text, coalesce(score_stats::text, '{}'), coalesce(feature_stats::text, '{}')
FROM scorer.runs
WHERE job = $1 AND status = 'succeeded' AND shard_count IS NULL
ORDER BY finished_at DESC
LIMIT 1
