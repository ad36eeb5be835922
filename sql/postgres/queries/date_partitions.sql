-- The date partitions of result table $1 (quoted, schema-qualified): each one's name and bound
-- (e.g. FOR VALUES IN ('2026-11-24')), for output.retention_days.
SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid)
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = $1::regclass
