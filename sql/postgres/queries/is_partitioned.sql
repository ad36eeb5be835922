-- Whether the table $1 (quoted, schema-qualified) is a partitioned table.
SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = $1::regclass)
