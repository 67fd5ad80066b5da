#!/usr/bin/env bash
# The whole test suite: domain, API on SQLite and on PostgreSQL, concurrency, rebuild.
# Installs and starts PostgreSQL when none answers (as root on Debian), so it works on a
# fresh machine with only the Rust toolchain. In CI a missing database is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_HOST=${KOPILKA_TEST_PG_HOST:-127.0.0.1}
PG_PORT=${KOPILKA_TEST_PG_PORT:-5432}
PG_USER=${KOPILKA_TEST_PG_USER:-postgres}

pg_answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER"
  else
    (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null
  fi
}

ensure_postgres() {
  if pg_answers; then return 0; fi
  echo "test.sh: no PostgreSQL answers on $PG_HOST:$PG_PORT; installing and starting one" >&2
  if [ "$(id -u)" != 0 ]; then echo "test.sh: need root to install PostgreSQL" >&2; return 1; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  fi
  local ver; ver=$(ls /etc/postgresql | sort -V | tail -1)
  local hba="/etc/postgresql/$ver/main/pg_hba.conf"
  if ! grep -q "kopilka-test" "$hba"; then
    { echo "# kopilka-test: trust on loopback for the test suite"
      echo "local all all trust"
      echo "host all all 127.0.0.1/32 trust"
      echo "host all all ::1/128 trust"; cat "$hba"; } > "$hba.new" && mv "$hba.new" "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || pg_ctlcluster --skip-systemctl-redirect "$ver" main reload || true
  for _ in $(seq 1 30); do pg_answers && return 0; sleep 1; done
  return 1
}

if ensure_postgres; then
  export KOPILKA_TEST_PG_URL=${KOPILKA_TEST_PG_URL:-postgres://$PG_USER@$PG_HOST:$PG_PORT/postgres}
else
  if [ "${CI:-}" = "true" ]; then
    echo "test.sh: PostgreSQL is required in CI and could not be started" >&2
    exit 1
  fi
  echo "test.sh: WARNING: no PostgreSQL; the PostgreSQL half of the suite will fail" >&2
fi

# Drop the databases earlier runs left behind (each test makes its own).
drop_test_databases() {
  command -v psql >/dev/null 2>&1 || return 0
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Atc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'kt\_%' OR datname LIKE 'kc\_%' OR datname LIKE 'kbench\_%'" 2>/dev/null |
    while read -r db; do psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done
}
drop_test_databases
rm -rf "${TMPDIR:-/tmp}/kopilka-tests"

# The cards tests decode codes and check passes with independent tools: zbarimg,
# ZXingReader, rsvg-convert, pdftoppm, openssl; PyJWT, jsonschema, aiosmtpd and the Google API
# client's discovery documents in Python. Installed quietly when missing (as root).
ensure_card_tools() {
  local missing=""
  for t in zbarimg ZXingReader rsvg-convert openssl pdftoppm; do command -v "$t" >/dev/null 2>&1 || missing="$missing $t"; done
  if [ -n "$missing" ] && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq zbar-tools zxing-cpp-tools librsvg2-bin openssl poppler-utils >/dev/null || true
  fi
  if ! python3 -c "import jwt, jsonschema, googleapiclient, cryptography" >/dev/null 2>&1; then
    local pkgs="pyjwt cryptography jsonschema aiosmtpd google-api-python-client"
    python3 -m pip install -q --disable-pip-version-check $pkgs >/dev/null 2>&1 ||
      python3 -m pip install -q --disable-pip-version-check --break-system-packages $pkgs >/dev/null 2>&1 ||
      { [ "$(id -u)" = 0 ] && apt-get install -y -qq python3-jwt python3-jsonschema python3-cryptography python3-googleapi python3-aiosmtpd >/dev/null 2>&1; } || true
  fi
}
ensure_card_tools

status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast || status=$?
else
  cargo test --workspace --no-fail-fast || status=$?
fi
drop_test_databases
# The web UI in a real browser (skipped outside CI when no browser can be installed).
bash scripts/e2e.sh || status=$?
exit $status
