-- Extends holder $3's lease on firing ($1, $2) by $4 seconds; no row updated: it is not ours.
UPDATE scorer.claims SET lease_until = clock_timestamp() + make_interval(secs => $4::float8)
WHERE job = $1 AND fire_at = $2::timestamptz AND holder = $3 AND state = 'claimed'
