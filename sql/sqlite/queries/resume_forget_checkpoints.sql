DELETE FROM scorer_resume_checkpoints WHERE run_id = ?1
