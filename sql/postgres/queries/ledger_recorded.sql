-- What the newest succeeded run of job $1 for logical date $2 used: the model and every input
-- object (for `scorer rerun --from-ledger`). A shard run read a share of the input: it cannot be
-- reproduced as a whole run, so sharded dates are left out.
SELECT run_id::text, coalesce(model_name, ''), coalesce(model_version, ''),
       coalesce(model_sha256, ''), coalesce(inputs::text, '[]')
FROM scorer.runs
WHERE job = $1 AND logical_date = $2::date AND status = 'succeeded' AND shard_count IS NULL
ORDER BY started_at DESC
LIMIT 1
