SELECT count(*) FROM scorer.resume_runs WHERE run_id = $1::uuid
