-- Holder $3 gives firing ($1, $2) back, to be claimed again (by anyone) after $5 seconds;
-- $4 says why.
UPDATE scorer.claims SET holder = '', outcome = $4,
    lease_until = clock_timestamp() + make_interval(secs => $5::float8)
WHERE job = $1 AND fire_at = $2::timestamptz AND holder = $3 AND state = 'claimed'
