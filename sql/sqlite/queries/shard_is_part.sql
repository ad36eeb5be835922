-- As sql/postgres/queries/shard_is_part.sql.
SELECT count(*) > 0 FROM scorer_shard_parts WHERE run_id = ?1
