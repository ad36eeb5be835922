-- The adopting run takes over the checkpoints of the run it resumes.
UPDATE scorer_resume_checkpoints SET run_id = ?2 WHERE run_id = ?1
