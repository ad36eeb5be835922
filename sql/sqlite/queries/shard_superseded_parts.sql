-- As sql/postgres/queries/shard_superseded_parts.sql.
SELECT p.shard_index, p.run_id, p.rows, p.body
FROM scorer_shard_parts p JOIN scorer_shard_attempts a USING (attempt)
WHERE a.superseded_by = ?1
