-- The adopting run names the run it resumed, at once (a run killed after publishing still says it).
UPDATE scorer.runs SET resumed_from = $1::uuid WHERE run_id = $2::uuid
