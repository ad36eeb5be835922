-- Attempt $1 expired: its shard runs that finished as `staged` are `abandoned`, with why ($2).
UPDATE scorer.runs SET status = 'abandoned', error = $2
WHERE attempt = $1 AND status = 'staged'
