-- Every succeeded shard run of attempt ?1 (see sql/postgres).
SELECT run_id, coalesce(model_name, ''), coalesce(model_version, ''),
       coalesce(model_sha256, ''), coalesce(inputs, '[]'), attempt
FROM scorer_runs
WHERE attempt = ?1 AND status = 'succeeded'
ORDER BY shard_index
