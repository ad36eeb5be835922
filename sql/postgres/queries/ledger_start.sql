-- The run's `running` row. Values arrive as text (one binding for both engines, src/ledger).
INSERT INTO scorer.runs
    (run_id, job, logical_date, status, started_at, output_table, scorer_version, host, heartbeat_at,
     os_user, job_sha256, shard_index, shard_count)
VALUES ($1::uuid, $2, $3::date, 'running', $4::timestamptz, $5, $6, $7, $4::timestamptz, $8, $9,
        $10, $11)
