-- The shard runs of attempt $1 staged rows that are the date's now ($2 rows in all); the
-- shard runs of the attempts it superseded staged rows that never will be.
UPDATE scorer.runs SET
    published_rows = CASE WHEN attempt = $1 THEN $2 ELSE published_rows END,
    status = CASE
        WHEN status <> 'staged' THEN status
        WHEN attempt = $1 THEN 'succeeded'
        ELSE 'superseded' END
WHERE attempt = $1
   OR attempt IN (SELECT attempt FROM scorer.shard_attempts WHERE superseded_by = $1)
