#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one: installs what is missing, starts a
# throwaway PostgreSQL on loopback (unless SCORER_TEST_DATABASE_URL points at one), runs every
# test (unit + integration, PostgreSQL tests included, none skipped), and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg-env.sh
source scripts/pg-env.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorer/target}"

if [ -z "${SCORER_TEST_DATABASE_URL:-}" ]; then
  pg_up
  trap pg_down EXIT
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --no-fail-fast "$@"
else
  cargo test --workspace --all-targets --no-fail-fast "$@"
fi
