-- Who ran what: the operating-system user of the process and the sha256 of the job file as read
-- (the model's sha256, the host, the scorer version and the input objects are recorded already).
ALTER TABLE scorer.runs ADD COLUMN os_user text;
ALTER TABLE scorer.runs ADD COLUMN job_sha256 text;
