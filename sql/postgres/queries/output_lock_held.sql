-- Whether this session still holds its advisory lock (the lock connection holds no other).
SELECT EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
)
