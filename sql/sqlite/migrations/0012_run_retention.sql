-- As sql/postgres/migrations/0012: what output.retention_days dropped, as JSON text.
ALTER TABLE scorer_runs ADD COLUMN retention TEXT;
