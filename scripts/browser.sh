# shellcheck shell=bash
# Sourced by scripts/test.sh: a headless browser for the test that renders `scorer report`'s page
# (Debian's chromium, installed when absent). `browser_up` exports SCORER_TEST_CHROMIUM.

browser_up() {
  local bin
  bin="$(command -v chromium || true)"
  if [ -z "$bin" ]; then
    echo "scorer: installing chromium from Debian's packages (headless, for the report test)" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      chromium >/dev/null
    bin="$(command -v chromium)"
  fi
  export SCORER_TEST_CHROMIUM="$bin"
}
