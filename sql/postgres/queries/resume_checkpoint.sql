-- One checkpoint, committed in the same transaction as the staged rows it describes.
INSERT INTO scorer.resume_checkpoints (run_id, seq, body) VALUES ($1::uuid, $2, $3)
