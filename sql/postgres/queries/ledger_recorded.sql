-- What the newest succeeded run of job $1 for logical date $2 used: the model and every input
-- object (for `scorer rerun --from-ledger`), and its shard attempt when it was a shard run (then
-- ledger_recorded_attempt.sql gathers every shard's share of the input).
SELECT run_id::text, coalesce(model_name, ''), coalesce(model_version, ''),
       coalesce(model_sha256, ''), coalesce(inputs::text, '[]'), attempt
FROM scorer.runs
WHERE job = $1 AND logical_date = $2::date AND status = 'succeeded'
ORDER BY started_at DESC
LIMIT 1
