-- As sql/postgres/queries/shard_supersede.sql.
UPDATE scorer_shard_attempts SET superseded_by = ?1
WHERE output = ?2 AND logical_date = ?3 AND attempt <> ?1
  AND published_at IS NULL AND superseded_by IS NULL
