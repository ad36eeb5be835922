-- The newest runs of job ?1 (of logical date ?2 and status ?3 when given), at most ?4.
SELECT run_id, logical_date, status, started_at, coalesce(finished_at, ''),
       coalesce(rows_written, 0), coalesce(error, ''),
       coalesce(published_rows, rows_written, 0)
FROM scorer_runs
WHERE job = ?1 AND (?2 IS NULL OR logical_date = ?2) AND (?3 IS NULL OR status = ?3)
ORDER BY started_at DESC
LIMIT ?4
