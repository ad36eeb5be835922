-- Serialises claiming within one job until the transaction ends ($1: 'scorer claims <job>').
SELECT pg_advisory_xact_lock(hashtextextended($1, 0))
