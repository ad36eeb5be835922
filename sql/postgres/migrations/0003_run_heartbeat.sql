-- A running process refreshes heartbeat_at, so a `running` row whose process died (stale
-- heartbeat, lock free) can be told from a live one; the sweep marks those `abandoned`.
-- `cancelled`: stopped by SIGTERM/SIGINT after cleaning up.
ALTER TABLE scorer.runs ADD COLUMN heartbeat_at timestamptz;
UPDATE scorer.runs SET heartbeat_at = coalesce(finished_at, started_at);
ALTER TABLE scorer.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE scorer.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'abandoned'));
CREATE INDEX runs_running ON scorer.runs (job) WHERE status = 'running';
