-- What a run's process held in memory: peak RSS (VmHWM) and the large-block cache's cap, most
-- bytes held and requests served (src/large_alloc.rs), as JSON.
ALTER TABLE scorer.runs ADD COLUMN memory jsonb;
