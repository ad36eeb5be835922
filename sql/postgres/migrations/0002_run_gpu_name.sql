-- The GPU a run scored on (`device` says cuda:N; this says which card that was). NULL on the CPU.
ALTER TABLE scorer.runs ADD COLUMN gpu_name text;
