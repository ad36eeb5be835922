# shellcheck shell=bash
# Sourced by scripts/test.sh: object-store protocol emulators on loopback, installed idempotently
# into ~/.cache/scorer (moto from PyPI for S3, and for the GCS client's XML requests; Azurite from
# npm for Azure Blob). `emulators_up` starts both on free ports and exports
# SCORER_TEST_S3_ENDPOINT and SCORER_TEST_AZURITE_ENDPOINT; `emulators_down` stops them.
# Needs free_port from scripts/pg-env.sh.

EMU_CACHE="${SCORER_CACHE:-$HOME/.cache/scorer}"
MOTO_VERSION=5.2.5
AZURITE_VERSION=3.35.0

emulators_install() {
  local venv="$EMU_CACHE/emulators-venv" node="$EMU_CACHE/emulators-node"
  if [ "$(cat "$venv/.scorer-pins" 2>/dev/null)" != "moto[server]==$MOTO_VERSION" ]; then
    echo "scorer: installing moto $MOTO_VERSION into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
    echo "moto[server]==$MOTO_VERSION" >"$venv/.scorer-pins"
  fi
  if [ "$(cat "$node/.scorer-pins" 2>/dev/null)" != "azurite@$AZURITE_VERSION" ]; then
    echo "scorer: installing azurite $AZURITE_VERSION into $node" >&2
    mkdir -p "$node"
    npm install --silent --no-audit --no-fund --prefix "$node" "azurite@$AZURITE_VERSION" >/dev/null
    echo "azurite@$AZURITE_VERSION" >"$node/.scorer-pins"
  fi
  MOTO_BIN="$venv/bin/moto_server"
  AZURITE_BIN="$node/node_modules/.bin/azurite-blob"
}

# wait_http URL: until anything answers on URL (any HTTP status), for up to 30 s.
wait_http() {
  local i
  for i in $(seq 1 150); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.2
  done
  echo "scorer: nothing answered on $1" >&2
  return 1
}

emulators_up() {
  emulators_install
  EMU_TMP="$(mktemp -d /tmp/scorer-emu.XXXXXX)"
  local s3_port az_port
  s3_port="$(free_port)"
  "$MOTO_BIN" -H 127.0.0.1 -p "$s3_port" >"$EMU_TMP/moto.log" 2>&1 &
  MOTO_PID=$!
  az_port="$(free_port)"
  "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$az_port" --inMemoryPersistence \
    --disableTelemetry --skipApiVersionCheck --silent >"$EMU_TMP/azurite.log" 2>&1 &
  AZURITE_PID=$!
  wait_http "http://127.0.0.1:$s3_port/" || { cat "$EMU_TMP/moto.log" >&2; return 1; }
  wait_http "http://127.0.0.1:$az_port/devstoreaccount1" || { cat "$EMU_TMP/azurite.log" >&2; return 1; }
  export SCORER_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
  export SCORER_TEST_AZURITE_ENDPOINT="http://127.0.0.1:$az_port/devstoreaccount1"
  echo "scorer: moto (S3) on 127.0.0.1:$s3_port, Azurite on 127.0.0.1:$az_port" >&2
}

emulators_down() {
  [ -n "${EMU_TMP:-}" ] || return 0
  kill "${MOTO_PID:-}" "${AZURITE_PID:-}" 2>/dev/null || true
  wait "${MOTO_PID:-}" "${AZURITE_PID:-}" 2>/dev/null || true
  rm -rf "$EMU_TMP"
  EMU_TMP=""
}
