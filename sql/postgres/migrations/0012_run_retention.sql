-- What output.retention_days dropped after the run published: the cutoff, the dates, an error.
ALTER TABLE scorer.runs ADD COLUMN retention jsonb;
