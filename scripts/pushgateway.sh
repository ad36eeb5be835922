# shellcheck shell=bash
# Sourced by scripts/test.sh: a throwaway Prometheus Pushgateway (Debian's
# prometheus-pushgateway, installed when absent) on a free loopback port, for the test that a run
# pushes its metrics. `pushgateway_up` exports SCORER_TEST_PUSHGATEWAY_URL; `pushgateway_down`
# stops it.

PUSHGATEWAY_PID=""

pushgateway_install() {
  command -v prometheus-pushgateway >/dev/null 2>&1 && return 0
  echo "scorer: installing prometheus-pushgateway from Debian's packages" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    prometheus-pushgateway >/dev/null
  # Debian's service, if an init system started it, is not ours.
  $sudo service prometheus-pushgateway stop >/dev/null 2>&1 || true
  command -v prometheus-pushgateway >/dev/null
}

pushgateway_up() {
  pushgateway_install
  local port dir
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  dir="$(mktemp -d /tmp/scorer-pushgateway.XXXXXX)"
  prometheus-pushgateway --web.listen-address="127.0.0.1:$port" >"$dir/log" 2>&1 &
  PUSHGATEWAY_PID=$!
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/-/ready', timeout=1)" 2>/dev/null; then
      export SCORER_TEST_PUSHGATEWAY_URL="http://127.0.0.1:$port"
      echo "scorer: Pushgateway on 127.0.0.1:$port" >&2
      return 0
    fi
    sleep 0.1
  done
  echo "scorer: the Pushgateway did not start:" >&2
  cat "$dir/log" >&2
  return 1
}

pushgateway_down() {
  [ -n "$PUSHGATEWAY_PID" ] && kill "$PUSHGATEWAY_PID" 2>/dev/null || true
  PUSHGATEWAY_PID=""
}
