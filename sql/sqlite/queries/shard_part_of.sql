-- As sql/postgres/queries/shard_part_of.sql.
SELECT run_id FROM scorer_shard_parts WHERE attempt = ?1 AND shard_index = ?2
