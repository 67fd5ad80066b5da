#!/usr/bin/env bash
# End-to-end tests of the web UI in headless Chromium (Debian's `chromium`, driven by npm
# `playwright-core`, run with node's built-in test runner).
#
# Installs what is missing (as root: chromium and node from Debian; `npm ci` in e2e/),
# builds the kopilka binary, starts one `kopilka serve` on a temporary SQLite database on
# a free port, runs e2e/tests/*.test.mjs, saves screenshots under $E2E_OUT
# (target/e2e-screenshots by default) and stops the server. In CI (CI=true) a missing
# browser or node is a failure; elsewhere the tests are skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

skip_or_fail() {
  if [ "${CI:-}" = "true" ]; then
    echo "e2e.sh: $1 (required in CI)" >&2
    exit 1
  fi
  echo "e2e.sh: SKIPPED the end-to-end tests: $1" >&2
  exit 0
}

find_chromium() {
  for c in "${E2E_CHROMIUM:-}" chromium chromium-browser; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && { command -v "$c"; return 0; }
  done
  return 1
}

if ! find_chromium >/dev/null || ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "e2e.sh: installing chromium and node from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || true
    pkgs="chromium"
    command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
    command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
    apt-get install -y -qq $pkgs >/dev/null 2>&1 || true
  fi
fi
CHROMIUM=$(find_chromium) || skip_or_fail "no chromium (install Debian's chromium package, or set E2E_CHROMIUM)"
command -v node >/dev/null 2>&1 || skip_or_fail "no node"
command -v npm >/dev/null 2>&1 || skip_or_fail "no npm"

if [ ! -f e2e/node_modules/playwright-core/package.json ] ||
   ! node -e "process.exit(require('./e2e/node_modules/playwright-core/package.json').version === require('./e2e/package-lock.json').packages['node_modules/playwright-core'].version ? 0 : 1)"; then
  (cd e2e && npm ci --no-audit --no-fund --loglevel=error) || skip_or_fail "npm ci failed in e2e/"
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build -q -p kopilka
BIN="$CARGO_TARGET_DIR/debug/kopilka"

tmp=$(mktemp -d)
port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
url="http://127.0.0.1:$port"
db="sqlite:$tmp/kopilka.db"
KOPILKA_PUBLIC_URL=$url KOPILKA_LOG=warn "$BIN" serve --listen "127.0.0.1:$port" --database-url "$db" >"$tmp/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  if node -e "fetch('$url/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then break; fi
  kill -0 "$server" 2>/dev/null || { cat "$tmp/server.log" >&2; echo "e2e.sh: kopilka serve did not start" >&2; exit 1; }
  sleep 0.1
done

export E2E_BIN=$BIN E2E_BASE_URL=$url E2E_DB_URL=$db E2E_CHROMIUM=$CHROMIUM
export E2E_OUT=${E2E_OUT:-$root/target/e2e-screenshots}
mkdir -p "$E2E_OUT"
status=0
(cd e2e && node --test tests/) || status=$?
if [ $status != 0 ]; then
  echo "e2e.sh: the server's log:" >&2
  tail -n 50 "$tmp/server.log" >&2 || true
fi
echo "e2e.sh: screenshots in $E2E_OUT"
exit $status
