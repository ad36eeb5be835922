-- As sql/postgres/queries/shard_attempt_state.sql.
SELECT published_by, superseded_by FROM scorer_shard_attempts WHERE attempt = ?1
