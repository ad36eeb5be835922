#!/usr/bin/env bash
# Builds the repository's Dockerfile and runs the image, as a team would deploy it, on a machine
# with no image registry and no Docker daemon: podman/buildah (Debian packages) with the base
# images made by scripts/image-bases.sh, then from the built image, read-only root, uid 10001:
#   1. scorer --version;
#   2. the quickstart job into SQLite on a mounted volume (input made by scorer-datagen in the image);
#   3. a job into the test PostgreSQL over TLS with sslmode=verify-full (its CA mounted);
#   4. scorer schedule, stopped by SIGTERM within its grace;
# and reports the image's size and its Debian packages against the mirror's newest (not gated).
# Needs root and SCORER_TEST_DATABASE_URL with its CA in SCORER_TEST_PG_CA (scripts/pg-env.sh).
# The build's cargo registry and target directory are buildah cache mounts, kept between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/image-bases.sh
source scripts/image-bases.sh
IMAGE="${SCORER_IMAGE:-localhost/scorer:ci}"
DATE=2026-11-24
say() { echo "image-check: $*"; }

images_base_up
t0=$SECONDS
buildah bud --isolation chroot --layers --pull-never --quiet \
  --build-arg RUST_IMAGE="$IMAGE_RUST" --build-arg PYTHON_IMAGE="$IMAGE_RUST" \
  --build-arg DEBIAN_IMAGE="$IMAGE_DEBIAN" -t "$IMAGE" -f Dockerfile . >/dev/null
say "built $IMAGE from Dockerfile in $((SECONDS - t0)) s"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
say "image size $((size / 1000000)) MB uncompressed ($size bytes)"

# The way the README runs it: read-only root, uid 10001, a writable /tmp, nothing else.
run_as_deployed() {
  podman run --read-only --user 10001 --tmpfs /tmp --network host "$@"
}
run() {
  run_as_deployed --rm "$@"
}
work="$(mktemp -d /tmp/scorer-image.XXXXXX)"
trap 'rm -rf "$work"' EXIT
chmod 777 "$work"

# 1. --version
out=$(run "$IMAGE" --version)
say "scorer --version: exit 0: $out"

# 2. The quickstart into SQLite on a mounted volume.
run -v "$work:/work" -w /work --entrypoint scorer-datagen "$IMAGE" input \
  --out "data/quickstart/dt=$DATE" --date "$DATE" --rows 100000 --files 4 \
  --row-group-rows 16384 --features 8 --null-feature 3 --null-fraction 0.01 >/dev/null
set +e
run -v "$work:/work" -w /work -e SCORER_MODELS_DIR=/app/models "$IMAGE" \
  run /app/jobs/quickstart.toml --date "$DATE" --sqlite-path /work/scorer.db >"$work/run.log" 2>&1
rc=$?
set -e
[ $rc -eq 0 ] || { cat "$work/run.log"; say "FAILED: quickstart exited $rc"; exit 1; }
rows=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT count(*) FROM quickstart_scores WHERE ds = '$DATE'\").fetchone()[0])" "$work/scorer.db")
[ "$rows" = 100000 ] || { say "FAILED: quickstart_scores has $rows rows"; exit 1; }
say "quickstart into SQLite on a volume: exit $rc, $rows rows in quickstart_scores for $DATE"

# 3. PostgreSQL over TLS, verify-full against the test server's CA.
: "${SCORER_TEST_DATABASE_URL:?image-check needs the test PostgreSQL (scripts/pg-env.sh pg_up)}"
port=$(python3 -c "import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).port)" "$SCORER_TEST_DATABASE_URL")
cp "$SCORER_TEST_PG_CA" "$work/ca.crt" && chmod 644 "$work/ca.crt"
url="postgres://postgres@localhost:$port/postgres?sslmode=verify-full&sslrootcert=/work/ca.crt"
psql "$SCORER_TEST_DATABASE_URL" -qXc "DROP TABLE IF EXISTS image_check_scores CASCADE" >/dev/null 2>&1
sed 's/^table = "quickstart_scores".*/table = "image_check_scores"/' jobs/quickstart.toml >"$work/image_check.toml"
set +e
run -v "$work:/work" -w /work -e SCORER_MODELS_DIR=/app/models -e DATABASE_URL="$url" "$IMAGE" \
  run /work/image_check.toml --date "$DATE" >"$work/run.log" 2>&1
rc=$?
set -e
[ $rc -eq 0 ] || { cat "$work/run.log"; say "FAILED: the PostgreSQL run exited $rc"; exit 1; }
rows=$(psql "$SCORER_TEST_DATABASE_URL" -XAtc "SELECT count(*) FROM image_check_scores WHERE ds = '$DATE'")
[ "$rows" = 100000 ] || { say "FAILED: image_check_scores has $rows rows"; exit 1; }
say "job into PostgreSQL over TLS (sslmode=verify-full): exit $rc, $rows rows"
# A wrong CA is refused: verify-full really verifies.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=other CA" -keyout "$work/other.key" \
  -out "$work/other.crt" >/dev/null 2>&1 && chmod 644 "$work/other.crt"
set +e
run -v "$work:/work" -w /work -e SCORER_MODELS_DIR=/app/models \
  -e DATABASE_URL="${url/ca.crt/other.crt}" "$IMAGE" run /work/image_check.toml --date "$DATE" >"$work/run.log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || { say "FAILED: a server certificate from another CA was accepted"; exit 1; }
say "the same run with another CA: exit $rc (refused: $(grep -o -m1 -i 'certificate[^"]*' "$work/run.log" | head -c 100))"
psql "$SCORER_TEST_DATABASE_URL" -qXc "DROP TABLE IF EXISTS image_check_scores CASCADE" >/dev/null 2>&1

# 4. scorer schedule, stopped by SIGTERM within its grace.
name="scorer-image-check-$$"
run_as_deployed -d --name "$name" -v "$work:/work" -w /work \
  -e SCORER_MODELS_DIR=/app/models "$IMAGE" schedule --jobs-dir /app/jobs \
  --sqlite-path /work/scorer.db --grace 20s >/dev/null
for _ in $(seq 1 100); do
  podman logs "$name" 2>&1 | grep -q "scheduler started" && break
  sleep 0.2
done
podman logs "$name" 2>&1 | grep -q "scheduler started" || { podman logs "$name"; podman rm -f "$name"; say "FAILED: the scheduler did not start"; exit 1; }
t1=$(date +%s.%N)
podman stop -t 30 "$name" >/dev/null
t2=$(date +%s.%N)
rc=$(podman inspect --format '{{.State.ExitCode}}' "$name")
# conmon may write the container's last lines to its log a moment after `podman stop` returns.
for _ in $(seq 1 25); do
  podman logs "$name" 2>&1 | grep -q "scheduler stopped" && break
  sleep 0.2
done
podman logs "$name" 2>&1 | grep -q "scheduler stopped" || { podman logs "$name"; podman rm -f "$name"; say "FAILED: no 'scheduler stopped' (exit $rc)"; exit 1; }
podman rm "$name" >/dev/null
secs=$(python3 -c "print(f'{$t2 - $t1:.1f}')")
[ "$rc" = 0 ] || { say "FAILED: scorer schedule exited $rc after SIGTERM"; exit 1; }
say "scorer schedule stopped by SIGTERM: exit $rc in $secs s (grace 20 s)"

# The image's packages: Debian's, each against the newest version this machine's apt lists know
# (bookworm, -updates, -security); reported, not gated. No scanner with a vulnerability database
# (trivy, grype) is in a registry reachable here.
run --entrypoint dpkg-query "$IMAGE" -W -f '${Package} ${Version}\n' >"$work/packages"
python3 - "$work/packages" <<'PY'
import subprocess, sys
pkgs = [l.split() for l in open(sys.argv[1]) if l.strip()]
policy = subprocess.run(["apt-cache", "policy", *[p for p, _ in pkgs]], capture_output=True, text=True).stdout
cand, name = {}, None
for line in policy.splitlines():
    if line and not line.startswith(" "):
        name = line.rstrip(":")
    elif "Candidate:" in line and name:
        cand[name] = line.split()[-1]
behind = [(p, v, cand[p]) for p, v in pkgs if cand.get(p) not in (None, "(none)", v)
          and subprocess.run(["dpkg", "--compare-versions", v, "lt", cand[p]]).returncode == 0]
print(f"image-check: {len(pkgs)} Debian packages in the image; {len(behind)} with a newer version in the mirror"
      + "".join(f"\n  {p} {v} -> {c}" for p, v, c in behind))
PY
# Untagged layers of earlier builds: the compile lives in the cache mount, so they only cost disk.
podman image prune -f >/dev/null
say "the image builds and runs: version, SQLite quickstart, PostgreSQL verify-full, schedule SIGTERM"
