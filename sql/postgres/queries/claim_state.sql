-- The state of firing ($1, $2), if it has a row.
SELECT state FROM scorer.claims WHERE job = $1 AND fire_at = $2::timestamptz
