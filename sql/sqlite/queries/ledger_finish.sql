-- Completes the run's row (src/ledger binds the same values as for PostgreSQL).
UPDATE scorer_runs SET
    status = ?2, finished_at = ?3, heartbeat_at = ?3,
    rows_read = ?4, rows_scored = ?5, rows_written = ?6, rows_rejected = ?7,
    stage_seconds = ?8, inputs = ?9,
    model_name = ?10, model_version = ?11, model_sha256 = ?12, device = ?13,
    score_stats = ?14, error = ?15, gpu_name = ?16,
    storage_requests = ?17, storage_errors = ?18,
    resumed_from = ?19, rows_resumed = ?20, memory = ?21,
    feature_stats = ?22, drift = ?23, metrics = ?24,
    retention = ?25, model_source = ?26
WHERE run_id = ?1
