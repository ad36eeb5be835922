-- As sql/postgres/queries/shard_runs_published.sql.
UPDATE scorer_runs SET
    published_rows = CASE WHEN attempt = ?1 THEN ?2 ELSE published_rows END,
    status = CASE
        WHEN status <> 'staged' THEN status
        WHEN attempt = ?1 THEN 'succeeded'
        ELSE 'superseded' END
WHERE attempt = ?1
   OR attempt IN (SELECT attempt FROM scorer_shard_attempts WHERE superseded_by = ?1)
