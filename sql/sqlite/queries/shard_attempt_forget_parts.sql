-- As sql/postgres/queries/shard_attempt_forget_parts.sql.
DELETE FROM scorer_shard_parts WHERE attempt = ?1
