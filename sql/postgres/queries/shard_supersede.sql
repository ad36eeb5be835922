-- Every other unpublished attempt of output $2 and date $3 is superseded by attempt $1.
UPDATE scorer.shard_attempts SET superseded_by = $1
WHERE output = $2 AND logical_date = $3::date AND attempt <> $1
  AND published_at IS NULL AND superseded_by IS NULL
