-- The parts staged by the attempts attempt $1 superseded (to remove).
SELECT p.shard_index::bigint, p.run_id::text, p.rows, p.body
FROM scorer.shard_parts p JOIN scorer.shard_attempts a USING (attempt)
WHERE a.superseded_by = $1
