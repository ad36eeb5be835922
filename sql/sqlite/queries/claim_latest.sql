SELECT max(fire_at) FROM scorer_claims WHERE job = ?1
