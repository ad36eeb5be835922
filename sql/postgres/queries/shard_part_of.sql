-- The run that staged shard $2 of attempt $1, if one did.
SELECT run_id::text FROM scorer.shard_parts WHERE attempt = $1 AND shard_index = $2
