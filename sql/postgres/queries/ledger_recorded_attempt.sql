-- Every succeeded shard run of attempt $1: their model (the same for all) and their shares of
-- the input, which together are the date's input (for `scorer rerun --from-ledger`).
SELECT run_id::text, coalesce(model_name, ''), coalesce(model_version, ''),
       coalesce(model_sha256, ''), coalesce(inputs::text, '[]'), attempt
FROM scorer.runs
WHERE attempt = $1 AND status = 'succeeded'
ORDER BY shard_index
