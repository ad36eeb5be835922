-- Unpublished, unsuperseded attempts (of job $1, or of every job when $1 is NULL) of which no
-- shard run of their output and date is running, with the seconds since their last activity
-- (created, or a part staged): what `scorer gc` expires once that is long enough.
SELECT a.attempt, a.job, a.output, a.logical_date::text, a.shard_count::bigint,
       (SELECT count(*) FROM scorer.shard_parts p WHERE p.attempt = a.attempt),
       extract(epoch FROM now() - greatest(a.created_at,
           coalesce((SELECT max(p.staged_at) FROM scorer.shard_parts p WHERE p.attempt = a.attempt),
                    a.created_at)))::float8
FROM scorer.shard_attempts a
WHERE a.published_at IS NULL AND a.superseded_by IS NULL AND ($1::text IS NULL OR a.job = $1)
  AND NOT EXISTS (
      SELECT 1 FROM scorer.runs r
      WHERE r.status = 'running' AND r.shard_count IS NOT NULL
        AND r.output_table = a.output AND r.logical_date = a.logical_date)
ORDER BY a.created_at
