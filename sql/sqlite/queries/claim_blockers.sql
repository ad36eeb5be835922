-- Other firings of job ?1 that must finish before firing ?2 may run (see sql/postgres).
SELECT count(*) FROM scorer_claims
WHERE job = ?1 AND state = 'claimed' AND fire_at <> ?2
  AND (lease_until > strftime('%Y-%m-%dT%H:%M:%fZ', 'now') OR fire_at < ?2)
