-- As sql/postgres/migrations/0005: object-store requests of a run and how many failed.
ALTER TABLE scorer_runs ADD COLUMN storage_requests INTEGER;
ALTER TABLE scorer_runs ADD COLUMN storage_errors INTEGER;
