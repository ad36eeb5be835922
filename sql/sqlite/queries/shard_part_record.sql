-- As sql/postgres/queries/shard_part_record.sql.
INSERT INTO scorer_shard_parts (attempt, shard_index, run_id, rows, body)
VALUES (?1, ?2, ?3, ?4, ?5)
