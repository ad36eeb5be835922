-- Every firing not yet done, for `scorer status`.
SELECT job, to_char(fire_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
       logical_date::text, holder, attempts,
       EXTRACT(EPOCH FROM (lease_until - clock_timestamp()))::float8, coalesce(outcome, '')
FROM scorer.claims WHERE state = 'claimed' ORDER BY job, fire_at
