-- Columns of table $1 (quoted, schema-qualified), in table order, with their types as
-- format_type prints them (`real`, `real[]`, `bigint`, `text`, ...).
SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
