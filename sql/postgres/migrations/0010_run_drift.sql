-- Input features' statistics (sampled, with their histograms) beside the outputs', and the run's
-- drift (PSI against the job's previous successful run, src/drift.rs).
ALTER TABLE scorer.runs ADD COLUMN feature_stats jsonb;
ALTER TABLE scorer.runs ADD COLUMN drift jsonb;
