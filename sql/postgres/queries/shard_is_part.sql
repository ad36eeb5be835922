-- Whether run $1 staged a shard part (its staging is the part's, not a dead run's leftovers).
SELECT count(*) > 0 FROM scorer.shard_parts WHERE run_id = $1::uuid
