-- Whether attempt $1 was published (by which run) or superseded (by which attempt).
SELECT published_by::text, superseded_by FROM scorer.shard_attempts WHERE attempt = $1
