-- Attempt $1 expired: the records of its parts (their staging already dropped).
DELETE FROM scorer.shard_parts WHERE attempt = $1
