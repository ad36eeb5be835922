-- Run $1, a shard of attempt $2 that finished as `staged`: `succeeded` (with the attempt's rows
-- in all) if the attempt was published meanwhile, `superseded` if it was superseded.
UPDATE scorer.runs SET
    status = CASE WHEN a.published_at IS NOT NULL THEN 'succeeded' ELSE 'superseded' END,
    published_rows = CASE WHEN a.published_at IS NOT NULL
        THEN (SELECT sum(p.rows) FROM scorer.shard_parts p WHERE p.attempt = $2)
        ELSE published_rows END
FROM scorer.shard_attempts a
WHERE runs.run_id = $1::uuid AND runs.status = 'staged' AND a.attempt = $2
  AND (a.published_at IS NOT NULL OR a.superseded_by IS NOT NULL)
