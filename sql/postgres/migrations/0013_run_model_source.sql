-- Where a model from the MLflow Model Registry came from: the URI, the alias, the version it
-- resolved to, the MLflow run id and every fetched file's sha256. NULL for scorer's own registry.
ALTER TABLE scorer.runs ADD COLUMN model_source jsonb;
