-- Shard $2 of attempt $1 staged $4 rows in run $3; $5 is what publishing them needs.
INSERT INTO scorer.shard_parts (attempt, shard_index, run_id, rows, body)
VALUES ($1, $2, $3::uuid, $4, $5)
