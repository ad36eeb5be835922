DELETE FROM scorer_resume_runs WHERE run_id = ?1
