# shellcheck shell=bash
# Sourced by scripts/test.sh and benches/e2e.sh: a throwaway PostgreSQL server on a free loopback
# port, installed from Debian's packages when absent, run as the `postgres` user when we are root
# (the server refuses to run as root); PG_EXTRA_OPTS adds server settings. `pg_up` exports SCORER_TEST_DATABASE_URL; `pg_down` stops
# the server and removes its directory.
#
# The server also speaks TLS, with a certificate for `localhost` signed by a throwaway CA
# (SCORER_TEST_PG_CA), and refuses any connection of the role `scorer_tls_only` without TLS: the
# TLS test (tests/it/tls.rs) connects as that role, so a success there was encrypted.

pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

pg_install() {
  pg_bindir >/dev/null && return 0
  echo "scorer: installing the PostgreSQL server from Debian's packages" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  # Debian creates and starts a `main` cluster on install; ours are throwaway, so stop that one.
  $sudo pg_ctlcluster "$(ls /usr/lib/postgresql | sort -V | tail -n1)" main stop 2>/dev/null || true
  pg_bindir >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# as_pg CMD...: run CMD as the postgres user when we are root, else as ourselves.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_up() {
  pg_install
  local bin port
  bin="$(pg_bindir)"
  port="$(free_port)"
  PG_TMP="$(mktemp -d /tmp/scorer-pg.XXXXXX)"
  [ "$(id -u)" -eq 0 ] && chown postgres "$PG_TMP"
  as_pg "$bin/initdb" -D "$PG_TMP/data" -U postgres -A trust --no-sync -E UTF8 >"$PG_TMP/initdb.log" 2>&1 \
    || { cat "$PG_TMP/initdb.log" >&2; return 1; }
  pg_tls_files "$PG_TMP" || return 1
  # Rules are matched in order: this role gets no further than here without TLS.
  sed -i '1i hostnossl all scorer_tls_only all reject' "$PG_TMP/data/pg_hba.conf"
  # fsync off: a throwaway test server; nothing here must survive a power cut.
  as_pg "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 start \
    -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -c ssl=on -c ssl_cert_file=$PG_TMP/tls/server.crt -c ssl_key_file=$PG_TMP/tls/server.key ${PG_EXTRA_OPTS:-}" >/dev/null \
    || { cat "$PG_TMP/server.log" >&2; return 1; }
  PG_BIN="$bin"
  export SCORER_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export SCORER_TEST_PG_CA="$PG_TMP/tls/ca.crt"
  echo "scorer: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($PG_TMP)" >&2
}

# pg_tls_files DIR: a CA, and a server certificate for `localhost` (no IP address) signed by it,
# under DIR/tls; the key readable by the server only.
pg_tls_files() {
  local d="$1/tls"
  mkdir -p "$d"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=scorer test CA" \
      -keyout "$d/ca.key" -out "$d/ca.crt" &&
      openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$d/server.key" -out "$d/server.csr" &&
      printf 'subjectAltName=DNS:localhost\n' >"$d/san.ext" &&
      openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 3650 -extfile "$d/san.ext" -out "$d/server.crt"
  } >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; return 1; }
  chmod 600 "$d/server.key"
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$d"
  return 0
}

pg_down() {
  [ -n "${PG_TMP:-}" ] || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_TMP"
  PG_TMP=""
}
