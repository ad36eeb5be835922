SELECT fire_at, logical_date FROM scorer_claims
WHERE job = ?1 AND state = 'claimed' AND lease_until <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
ORDER BY fire_at
