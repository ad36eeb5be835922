-- Attempt $1 expired: forgotten, so that its shards retried start it afresh. Only while it is
-- still unpublished and unsuperseded.
DELETE FROM scorer.shard_attempts
WHERE attempt = $1 AND published_at IS NULL AND superseded_by IS NULL
