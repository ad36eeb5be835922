-- The adopting run takes over the checkpoints of the run it resumes.
UPDATE scorer.resume_checkpoints SET run_id = $2::uuid WHERE run_id = $1::uuid
