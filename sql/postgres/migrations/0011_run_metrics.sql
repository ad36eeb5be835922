-- A run's performance figures: per-batch latency percentiles, rows/s, CPU seconds, and whether it
-- was slow against the job's recent runs (src/metrics).
ALTER TABLE scorer.runs ADD COLUMN metrics jsonb;
