#!/usr/bin/env bash
# Brings up deploy/compose/compose.yaml with podman-compose (PyPI) as a developer would, waits for
# the scheduler's first run of the demo job to land in PostgreSQL (ledger row and scored rows),
# stops it (SIGTERM to `scorer schedule`) and removes everything with its volumes.
# No registry is reachable here, so PostgreSQL and moto run from stand-in images built from
# Debian's and PyPI's packages (deploy/compose/stand-ins) and scorer from the image that
# scripts/image-check.sh built (SCORER_IMAGE, default localhost/scorer:ci).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/image-bases.sh
source scripts/image-bases.sh
say() { echo "compose-check: $*"; }
images_base_up
export SCORER_IMAGE="${SCORER_IMAGE:-localhost/scorer:ci}"
export POSTGRES_IMAGE=localhost/scorer-stand-in/postgres:15
export S3_IMAGE=localhost/scorer-stand-in/moto:5.2.5
podman image exists "$SCORER_IMAGE" || { say "no $SCORER_IMAGE: run scripts/image-check.sh first"; exit 2; }

VENV="${SCORER_CACHE:-$HOME/.cache/scorer}/compose-venv"
if [ ! -x "$VENV/bin/podman-compose" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "podman-compose==1.6.0"
fi
t0=$SECONDS
buildah bud --isolation chroot --layers --pull-never --quiet --build-arg DEBIAN_IMAGE="$IMAGE_DEBIAN" \
  -t "$POSTGRES_IMAGE" -f deploy/compose/stand-ins/postgres.Containerfile deploy/compose/stand-ins >/dev/null
buildah bud --isolation chroot --layers --pull-never --quiet --build-arg PYTHON_IMAGE="$IMAGE_RUST" \
  -t "$S3_IMAGE" -f deploy/compose/stand-ins/moto.Containerfile deploy/compose/stand-ins >/dev/null
say "stand-in images for postgres:15 and moto built in $((SECONDS - t0)) s"

# (images_base_up also set CONTAINERS_CONF: runc and explicit limits for what compose starts.)
log="$(mktemp)"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PG_PORT="$(free_port)"
S3_PORT="$(free_port)"
export PG_PORT S3_PORT
project="scorer-compose-check-$$"
compose() { "$VENV/bin/podman-compose" -p "$project" -f deploy/compose/compose.yaml "$@"; }
cleanup() {
  compose down -v -t 30 >/dev/null 2>&1 || true
  rm -f "$log"
}
trap cleanup EXIT

t0=$SECONDS
compose up -d >"$log" 2>&1 || { cat "$log"; say "FAILED: podman-compose up"; exit 1; }
say "podman-compose up -d: exit 0 in $((SECONDS - t0)) s (postgres, s3, datagen, seed, scorer)"
url="postgres://scorer:scorer@127.0.0.1:$PG_PORT/analytics"
landed=""
for _ in $(seq 1 180); do
  landed=$(psql "$url" -XAtc "SELECT logical_date, rows_written FROM scorer.runs WHERE job = 'demo_every_minute' AND status = 'succeeded' ORDER BY finished_at LIMIT 1" 2>/dev/null || true)
  [ -n "$landed" ] && break
  sleep 1
done
if [ -z "$landed" ]; then
  compose logs >&2 || true
  say "FAILED: no scheduled run landed within 180 s"
  exit 1
fi
date="${landed%%|*}"
rows=$(psql "$url" -XAtc "SELECT count(*) FROM demo.scores WHERE ds = '$date'")
[ "$rows" = 50000 ] || { say "FAILED: demo.scores has $rows rows for $date"; exit 1; }
say "the scheduler's first run landed after $((SECONDS - t0)) s: $date, $rows rows in demo.scores, ledger succeeded"
t1=$SECONDS
compose stop -t 30 scorer >/dev/null 2>&1
rc=$(podman inspect --format '{{.State.ExitCode}}' "${project}_scorer_1")
[ "$rc" = 0 ] || { compose logs scorer >&2; say "FAILED: scorer schedule exited $rc on stop"; exit 1; }
say "scorer schedule stopped (SIGTERM): exit $rc in $((SECONDS - t1)) s"
compose down -v -t 30 >/dev/null 2>&1
say "podman-compose down -v: everything removed"
