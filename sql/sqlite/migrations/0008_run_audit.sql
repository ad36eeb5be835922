-- As sql/postgres/migrations/0008: the process's OS user and the job file's sha256.
ALTER TABLE scorer_runs ADD COLUMN os_user TEXT;
ALTER TABLE scorer_runs ADD COLUMN job_sha256 TEXT;
