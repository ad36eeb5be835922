-- As sql/postgres/migrations/0010: feature statistics and drift, as JSON text.
ALTER TABLE scorer_runs ADD COLUMN feature_stats TEXT;
ALTER TABLE scorer_runs ADD COLUMN drift TEXT;
