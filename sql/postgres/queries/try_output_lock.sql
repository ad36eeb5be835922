-- One run per output and date: a session-level advisory lock on $1, the key
-- `scorer output <table or URL> <date>` (src/lock.rs).
SELECT pg_try_advisory_lock(hashtextextended($1, 0))
