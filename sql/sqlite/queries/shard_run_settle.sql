-- As sql/postgres/queries/shard_run_settle.sql.
UPDATE scorer_runs SET
    status = CASE WHEN a.published_at IS NOT NULL THEN 'succeeded' ELSE 'superseded' END,
    published_rows = CASE WHEN a.published_at IS NOT NULL
        THEN (SELECT sum(p.rows) FROM scorer_shard_parts p WHERE p.attempt = ?2)
        ELSE published_rows END
FROM scorer_shard_attempts a
WHERE scorer_runs.run_id = ?1 AND scorer_runs.status = 'staged' AND a.attempt = ?2
  AND (a.published_at IS NOT NULL OR a.superseded_by IS NOT NULL)
