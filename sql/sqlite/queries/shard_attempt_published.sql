-- As sql/postgres/queries/shard_attempt_published.sql.
UPDATE scorer_shard_attempts
SET published_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), published_by = ?2
WHERE attempt = ?1
