-- One run of a (job, date) at a time: a session-level advisory lock keyed by both.
SELECT pg_try_advisory_lock(hashtextextended('scorer run ' || $1 || ' ' || $2, 0))
