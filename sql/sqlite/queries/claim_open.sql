SELECT job, fire_at, logical_date, holder, attempts,
       (julianday(lease_until) - julianday('now')) * 86400.0, coalesce(outcome, '')
FROM scorer_claims WHERE state = 'claimed' ORDER BY job, fire_at
