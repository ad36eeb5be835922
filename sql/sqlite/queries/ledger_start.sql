-- The run's `running` row (src/ledger binds the same values as for PostgreSQL).
INSERT INTO scorer_runs
    (run_id, job, logical_date, status, started_at, output_table, scorer_version, host, heartbeat_at,
     os_user, job_sha256, shard_index, shard_count)
VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?4, ?8, ?9, ?10, ?11)
