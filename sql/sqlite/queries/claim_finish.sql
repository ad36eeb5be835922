UPDATE scorer_claims SET state = 'done', finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
    outcome = ?4, run_id = ?5, lease_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
WHERE job = ?1 AND fire_at = ?2 AND holder = ?3 AND state = 'claimed'
