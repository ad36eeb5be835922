#!/usr/bin/env bash
# Runs the repository's Airflow DAGs for real (deploy/airflow/tests/dags_test.py): `airflow dags
# test` with SQLite metadata, scorer on the PATH, against the test PostgreSQL; the daily DAG, the
# sharded DAG, a try that exits 4 and is retried, and one that exits 3 and fails at once.
# Needs SCORER_TEST_DATABASE_URL (scripts/pg-env.sh) and the built binaries in SCORER_BIN_DIR
# (default: the debug build in CARGO_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/airflow-env.sh
source scripts/airflow-env.sh
airflow_env_up
export SCORER_BIN_DIR="${SCORER_BIN_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/scorer/target}/debug}"
if [ -z "${SCORER_TEST_DATABASE_URL:-}" ]; then
  echo "airflow-check: SCORER_TEST_DATABASE_URL is not set (scripts/pg-env.sh pg_up)" >&2
  exit 2
fi
"$AIRFLOW_VENV/bin/python" deploy/airflow/tests/dags_test.py
