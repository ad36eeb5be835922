-- The newest runs of job $1 (of logical date $2 and status $3 when given), at most $4; the last
-- column is the rows the run's publication gave the date (a shard's: its attempt's, in all).
SELECT run_id::text, logical_date::text, status,
       to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
       coalesce(to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), ''),
       coalesce(rows_written, 0), coalesce(error, ''),
       coalesce(published_rows, rows_written, 0)
FROM scorer.runs
WHERE job = $1 AND ($2::text IS NULL OR logical_date = $2::date)
  AND ($3::text IS NULL OR status = $3::text)
ORDER BY started_at DESC
LIMIT $4
