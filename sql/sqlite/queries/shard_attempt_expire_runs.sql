-- As sql/postgres/queries/shard_attempt_expire_runs.sql.
UPDATE scorer_runs SET status = 'abandoned', error = ?2
WHERE attempt = ?1 AND status = 'staged'
