-- As sql/postgres/queries/ledger_baseline.sql.
SELECT run_id, coalesce(score_stats, '{}'), coalesce(feature_stats, '{}')
FROM scorer_runs
WHERE job = ?1 AND status = 'succeeded' AND shard_count IS NULL
ORDER BY finished_at DESC
LIMIT 1
