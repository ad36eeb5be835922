-- Drops the part records of the attempts attempt $1 superseded, once their staging is removed.
DELETE FROM scorer.shard_parts
WHERE attempt IN (SELECT attempt FROM scorer.shard_attempts WHERE superseded_by = $1)
