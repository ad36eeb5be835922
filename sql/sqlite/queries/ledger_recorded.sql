-- What the newest succeeded run of job ?1 for logical date ?2 used (see sql/postgres).
SELECT run_id, coalesce(model_name, ''), coalesce(model_version, ''),
       coalesce(model_sha256, ''), coalesce(inputs, '[]'), attempt
FROM scorer_runs
WHERE job = ?1 AND logical_date = ?2 AND status = 'succeeded'
ORDER BY started_at DESC
LIMIT 1
