-- As sql/postgres/migrations/0007: the run's process memory, as JSON text.
ALTER TABLE scorer_runs ADD COLUMN memory TEXT;
