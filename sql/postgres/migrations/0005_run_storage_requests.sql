-- Object-store requests of a run and how many failed (5xx, 429, timeouts, resets, cut-off bodies);
-- object_store retried each failure with backoff until the job's max_retries (src/source/store_metrics.rs).
ALTER TABLE scorer.runs ADD COLUMN storage_requests bigint;
ALTER TABLE scorer.runs ADD COLUMN storage_errors bigint;
