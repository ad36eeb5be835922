-- Other firings of job $1 that must finish before firing $2 may run: one being run (live
-- lease), or an older one not yet done (it runs first: oldest first).
SELECT count(*) FROM scorer.claims
WHERE job = $1 AND state = 'claimed' AND fire_at <> $2::timestamptz
  AND (lease_until > clock_timestamp() OR fire_at < $2::timestamptz)
