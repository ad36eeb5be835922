-- Completes the run's row. Values arrive as text and numbers (one binding for both engines).
UPDATE scorer.runs SET
    status = $2, finished_at = $3::timestamptz, heartbeat_at = $3::timestamptz,
    rows_read = $4, rows_scored = $5, rows_written = $6, rows_rejected = $7,
    stage_seconds = $8::jsonb, inputs = $9::jsonb,
    model_name = $10, model_version = $11, model_sha256 = $12, device = $13,
    score_stats = $14::jsonb, error = $15, gpu_name = $16,
    storage_requests = $17, storage_errors = $18,
    resumed_from = $19::uuid, rows_resumed = $20, memory = $21::jsonb,
    feature_stats = $22::jsonb, drift = $23::jsonb, metrics = $24::jsonb,
    retention = $25::jsonb, model_source = $26::jsonb
WHERE run_id = $1::uuid
