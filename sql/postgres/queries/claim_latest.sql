-- The newest firing of job $1 that has a row (claimed or done).
SELECT to_char(max(fire_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
FROM scorer.claims WHERE job = $1
