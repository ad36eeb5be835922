SELECT state FROM scorer_claims WHERE job = ?1 AND fire_at = ?2
