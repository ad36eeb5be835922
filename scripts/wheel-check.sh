#!/usr/bin/env bash
# The pip way to install scorer: maturin (PyPI) packages the scorer and scorer-datagen binaries
# into a wheel (packaging/wheel/pyproject.toml, binary bindings, as ruff and uv ship), which is
# installed into a fresh virtualenv and runs the quickstart from there: datagen, validate, run into
# SQLite, rows checked.
# The wheel is built in the image's build environment (the Rust base of scripts/image-bases.sh,
# source at /src) over the image build's cargo cache mounts, so it reuses the release compile that
# scripts/image-check.sh did (run that first): one cold release build serves both.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/image-bases.sh
source scripts/image-bases.sh
say() { echo "wheel-check: $*"; }
images_base_up
MATURIN_IMAGE=localhost/scorer-base/maturin:1.16.0
if ! podman image exists "$MATURIN_IMAGE"; then
  ctr="$(buildah from --pull-never "$IMAGE_RUST")"
  buildah run --isolation chroot "$ctr" -- python3 -m pip install -q --no-cache-dir \
    --break-system-packages "maturin==1.16.0"
  buildah commit -q --rm "$ctr" "$MATURIN_IMAGE" >/dev/null
fi
# buildah keeps `RUN --mount=type=cache,id=ID` directories under its temporary directory.
cache="${TMPDIR:-/var/tmp}/buildah-cache"
for id in scorer-release-target scorer-cargo-registry; do
  [ -d "$cache/$id" ] || { say "no build cache $cache/$id: run scripts/image-check.sh first"; exit 2; }
done
work="$(mktemp -d /tmp/scorer-wheel.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/dist"
t0=$SECONDS
podman run --rm --network host \
  -v "$PWD:/src" -v "$cache/scorer-release-target:/src/target" \
  -v "$cache/scorer-cargo-registry:/usr/local/cargo/registry" -v "$work/dist:/dist" \
  -e CARGO_PROFILE_RELEASE_DEBUG=false -e CARGO_PROFILE_RELEASE_STRIP=symbols \
  -w /src/packaging/wheel "$MATURIN_IMAGE" maturin build --release --locked --out /dist \
  >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; say "FAILED: maturin build"; exit 1; }
wheel="$(ls "$work"/dist/scorer-*.whl)"
say "built $(basename "$wheel") ($(($(stat -c %s "$wheel") / 1000000)) MB) in $((SECONDS - t0)) s"

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel"
say "pip install into a fresh venv: $("$work/venv/bin/scorer" --version)"
# The quickstart, from the installed wheel, in a directory holding only its job and model.
mkdir -p "$work/qs/jobs" "$work/qs/models"
cp jobs/quickstart.toml "$work/qs/jobs/"
cp -r models/quickstart_mlp "$work/qs/models/"
(
  cd "$work/qs"
  PATH="$work/venv/bin:$PATH"
  scorer-datagen input --out data/quickstart/dt=2026-11-24 --date 2026-11-24 --rows 100000 --files 4 \
    --row-group-rows 16384 --features 8 --null-feature 3 --null-fraction 0.01 >/dev/null
  scorer validate jobs/quickstart.toml --date 2026-11-24 >/dev/null
  scorer run jobs/quickstart.toml --date 2026-11-24 2>/dev/null
)
rows=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT count(*) FROM quickstart_scores WHERE ds = '2026-11-24'\").fetchone()[0])" "$work/qs/scorer.db")
[ "$rows" = 100000 ] || { say "FAILED: quickstart_scores has $rows rows"; exit 1; }
say "the quickstart from the wheel: exit 0, $rows rows in quickstart_scores"
