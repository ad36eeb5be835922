-- Holder $3 finishes firing ($1, $2) for good: outcome $4, run $5 (may be NULL).
UPDATE scorer.claims SET state = 'done', finished_at = clock_timestamp(), outcome = $4,
    run_id = $5::uuid, lease_until = clock_timestamp()
WHERE job = $1 AND fire_at = $2::timestamptz AND holder = $3 AND state = 'claimed'
