# shellcheck shell=bash
# Sourced by scripts/test.sh: a real MLflow tracking server on loopback for the model-registry
# tests. `mlflow server` (PyPI) with a SQLite backend, its artifacts on the S3 emulator (moto,
# through the server's artifact proxy), and MLflow's basic-auth app so the tests can present
# right and wrong credentials. The same cached virtualenv holds the training libraries the tests
# log models with (MLflow's own Python API, XGBoost, LightGBM, scikit-learn, skl2onnx).
# `mlflow_up` (after emulators_up) exports SCORER_TEST_MLFLOW_URI, SCORER_TEST_MLFLOW_PYTHON,
# SCORER_TEST_MLFLOW_USER and SCORER_TEST_MLFLOW_PASSWORD; `mlflow_down` stops it.
# Needs free_port from scripts/pg-env.sh and wait_http from scripts/emulators.sh.
MLFLOW_PINS=("mlflow[auth]==3.18.0" skl2onnx==1.20.0 onnx==1.23.2 onnxruntime==1.23.2
  scikit-learn==1.9.1 xgboost-cpu==3.2.0 lightgbm==4.7.0 boto3==1.44.5 pyarrow==26.0.1)

mlflow_install() {
  local venv="${SCORER_CACHE:-$HOME/.cache/scorer}/mlflow-venv"
  if [ "$(cat "$venv/.scorer-pins" 2>/dev/null)" != "${MLFLOW_PINS[*]}" ]; then
    echo "scorer: installing MLflow and the training libraries into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: "${MLFLOW_PINS[@]}"
    echo "${MLFLOW_PINS[*]}" >"$venv/.scorer-pins"
  fi
  MLFLOW_VENV="$venv"
}

mlflow_up() {
  mlflow_install
  MLFLOW_TMP="$(mktemp -d /tmp/scorer-mlflow.XXXXXX)"
  local port bucket=mlflow-artifacts password=scorer-test-admin-pw
  port="$(free_port)"
  curl -s -f -X PUT "$SCORER_TEST_S3_ENDPOINT/$bucket" -o /dev/null
  cat >"$MLFLOW_TMP/auth.ini" <<INI
[mlflow]
default_permission = READ
database_uri = sqlite:///$MLFLOW_TMP/auth.db
admin_username = admin
admin_password = $password
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
    MLFLOW_S3_ENDPOINT_URL="$SCORER_TEST_S3_ENDPOINT" \
    MLFLOW_AUTH_CONFIG_PATH="$MLFLOW_TMP/auth.ini" MLFLOW_FLASK_SERVER_SECRET_KEY=scorer-tests \
    "$MLFLOW_VENV/bin/mlflow" server --app-name basic-auth \
    --backend-store-uri "sqlite:///$MLFLOW_TMP/mlflow.db" \
    --artifacts-destination "s3://$bucket" \
    --host 127.0.0.1 --port "$port" --workers 2 >"$MLFLOW_TMP/server.log" 2>&1 &
  MLFLOW_PID=$!
  local i
  for i in $(seq 1 600); do
    curl -s -f -o /dev/null "http://127.0.0.1:$port/health" && break
    sleep 0.2
  done
  curl -s -f -o /dev/null "http://127.0.0.1:$port/health" || { cat "$MLFLOW_TMP/server.log" >&2; return 1; }
  export SCORER_TEST_MLFLOW_URI="http://127.0.0.1:$port"
  export SCORER_TEST_MLFLOW_PYTHON="$MLFLOW_VENV/bin/python"
  export SCORER_TEST_MLFLOW_USER=admin
  export SCORER_TEST_MLFLOW_PASSWORD="$password"
  echo "scorer: MLflow tracking server on 127.0.0.1:$port (artifacts in s3://$bucket on moto)" >&2
}

mlflow_down() {
  [ -n "${MLFLOW_TMP:-}" ] || return 0
  kill "${MLFLOW_PID:-}" 2>/dev/null || true
  wait "${MLFLOW_PID:-}" 2>/dev/null || true
  # uvicorn's workers outlive a killed parent for a moment; the directory goes either way.
  pkill -f "$MLFLOW_TMP" 2>/dev/null || true
  rm -rf "$MLFLOW_TMP"
  MLFLOW_TMP=""
}
