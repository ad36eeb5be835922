DELETE FROM scorer.resume_checkpoints WHERE run_id = $1::uuid
