-- As sql/postgres/queries/shard_forget_parts.sql.
DELETE FROM scorer_shard_parts
WHERE attempt IN (SELECT attempt FROM scorer_shard_attempts WHERE superseded_by = ?1)
