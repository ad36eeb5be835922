-- Run $1 is a shard of attempt $2.
UPDATE scorer.runs SET attempt = $2 WHERE run_id = $1::uuid
