-- Attempt $1 is the date's rows now, published by run $2.
UPDATE scorer.shard_attempts SET published_at = now(), published_by = $2::uuid WHERE attempt = $1
