-- As sql/postgres/migrations/0013: where an MLflow model came from, as JSON text.
ALTER TABLE scorer_runs ADD COLUMN model_source TEXT;
