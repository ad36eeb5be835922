-- As sql/postgres/queries/shard_parts.sql.
SELECT shard_index, run_id, rows, body FROM scorer_shard_parts
WHERE attempt = ?1 ORDER BY shard_index
