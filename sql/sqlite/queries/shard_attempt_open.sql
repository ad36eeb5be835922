-- As sql/postgres/queries/shard_attempt_open.sql.
INSERT INTO scorer_shard_attempts (attempt, job, logical_date, output, shard_count, label)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (attempt) DO NOTHING
