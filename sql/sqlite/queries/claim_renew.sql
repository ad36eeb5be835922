UPDATE scorer_claims SET lease_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?4)
WHERE job = ?1 AND fire_at = ?2 AND holder = ?3 AND state = 'claimed'
