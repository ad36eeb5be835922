-- The partition of result table $1 (quoted, schema-qualified) whose bound is $2
-- (e.g. FOR VALUES IN ('2026-11-24')).
SELECT c.relname::text
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = $1::regclass
  AND pg_get_expr(c.relpartbound, c.oid) = $2
