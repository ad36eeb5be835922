-- The swap takes an ACCESS EXCLUSIVE lock on the result table for a moment; wait for long-running
-- readers at most this long instead of queueing every later reader behind us indefinitely.
SET LOCAL lock_timeout = '60s'
