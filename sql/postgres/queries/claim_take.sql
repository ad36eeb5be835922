-- Claims firing ($1 job, $2 fire_at, $3 logical_date) for holder $4 with a lease of $5 seconds:
-- a new row, or a claimed row whose lease expired (its holder died or it waits for a retry
-- that is due). Returns the attempt number; no row if the firing is done or held.
INSERT INTO scorer.claims
    (job, fire_at, logical_date, state, holder, lease_until, attempts, claimed_at)
VALUES ($1, $2::timestamptz, $3::date, 'claimed', $4,
        clock_timestamp() + make_interval(secs => $5::float8), 1, clock_timestamp())
ON CONFLICT (job, fire_at) DO UPDATE SET
    holder = EXCLUDED.holder, lease_until = EXCLUDED.lease_until,
    attempts = scorer.claims.attempts + 1, claimed_at = EXCLUDED.claimed_at
WHERE scorer.claims.state = 'claimed' AND scorer.claims.lease_until <= clock_timestamp()
RETURNING attempts::bigint
