# shellcheck shell=bash
# Airflow for the deployment checks: apache-airflow from PyPI in a cached virtualenv, with the
# repository's scorer-airflow package (ScorerOperator) installed into it from this tree.
# `airflow_env_up` sets AIRFLOW_VENV.
AIRFLOW_VERSION=3.3.2
airflow_env_up() {
  AIRFLOW_VENV="${SCORER_CACHE:-$HOME/.cache/scorer}/airflow-venv"
  if [ ! -x "$AIRFLOW_VENV/bin/python" ] \
    || ! "$AIRFLOW_VENV/bin/python" -c "import airflow" 2>/dev/null; then
    echo "scorer: installing apache-airflow $AIRFLOW_VERSION (cached in $AIRFLOW_VENV)" >&2
    python3 -m venv "$AIRFLOW_VENV"
    "$AIRFLOW_VENV/bin/pip" install -q "apache-airflow==$AIRFLOW_VERSION"
  fi
  # Always from this tree (a few seconds), so the checks run the operator as committed.
  "$AIRFLOW_VENV/bin/pip" install -q --no-deps --force-reinstall \
    deploy/airflow/scorer-airflow
  export AIRFLOW_VENV
}
