-- As sql/postgres/queries/shard_run_attempt.sql.
UPDATE scorer_runs SET attempt = ?2 WHERE run_id = ?1
