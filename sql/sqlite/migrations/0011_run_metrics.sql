-- As sql/postgres/migrations/0011: the run's performance figures, as JSON text.
ALTER TABLE scorer_runs ADD COLUMN metrics TEXT;
