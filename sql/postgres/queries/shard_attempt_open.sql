-- Records attempt $1 of job $2, date $3, output $4 with $5 shards and label $6, if new.
INSERT INTO scorer.shard_attempts (attempt, job, logical_date, output, shard_count, label)
VALUES ($1, $2, $3::date, $4, $5, $6)
ON CONFLICT (attempt) DO NOTHING
