UPDATE scorer_claims SET holder = '', outcome = ?4,
    lease_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?5)
WHERE job = ?1 AND fire_at = ?2 AND holder = ?3 AND state = 'claimed'
