-- The parts attempt $1's shards staged, by shard.
SELECT shard_index::bigint, run_id::text, rows, body FROM scorer.shard_parts
WHERE attempt = $1 ORDER BY shard_index
