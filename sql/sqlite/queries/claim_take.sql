-- Claims firing (?1, ?2, ?3) for holder ?4 with a lease modifier ?5 ('+30.000 seconds'); see
-- sql/postgres. Returns the attempt number; no row if the firing is done or held.
INSERT INTO scorer_claims
    (job, fire_at, logical_date, state, holder, lease_until, attempts, claimed_at)
VALUES (?1, ?2, ?3, 'claimed', ?4, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?5), 1,
        strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
ON CONFLICT (job, fire_at) DO UPDATE SET
    holder = excluded.holder, lease_until = excluded.lease_until,
    attempts = scorer_claims.attempts + 1, claimed_at = excluded.claimed_at
WHERE scorer_claims.state = 'claimed'
  AND scorer_claims.lease_until <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
RETURNING attempts
