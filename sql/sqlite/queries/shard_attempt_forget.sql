-- As sql/postgres/queries/shard_attempt_forget.sql.
DELETE FROM scorer_shard_attempts
WHERE attempt = ?1 AND published_at IS NULL AND superseded_by IS NULL
