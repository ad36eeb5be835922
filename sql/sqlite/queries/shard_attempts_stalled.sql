-- As sql/postgres/queries/shard_attempts_stalled.sql.
SELECT a.attempt, a.job, a.output, a.logical_date, a.shard_count,
       (SELECT count(*) FROM scorer_shard_parts p WHERE p.attempt = a.attempt),
       (julianday('now') - julianday(max(a.created_at,
           coalesce((SELECT max(p.staged_at) FROM scorer_shard_parts p WHERE p.attempt = a.attempt),
                    a.created_at)))) * 86400.0
FROM scorer_shard_attempts a
WHERE a.published_at IS NULL AND a.superseded_by IS NULL AND (?1 IS NULL OR a.job = ?1)
  AND NOT EXISTS (
      SELECT 1 FROM scorer_runs r
      WHERE r.status = 'running' AND r.shard_count IS NOT NULL
        AND r.output_table = a.output AND r.logical_date = a.logical_date)
ORDER BY a.created_at
