-- Firings of job $1 claimed but not held: their holder died or their retry is due. Oldest first.
SELECT to_char(fire_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), logical_date::text
FROM scorer.claims
WHERE job = $1 AND state = 'claimed' AND lease_until <= clock_timestamp()
ORDER BY fire_at
