#!/usr/bin/env bash
# API fuzzing: schemathesis (PyPI, pinned below) against the OpenAPI document of a running
# `kopilka serve` on a throwaway SQLite database. Fails on any 5xx, on any answer that does
# not match the document (schema, status code, content type), and on any schemathesis error.
#
#   bash scripts/fuzz-api.sh            # debug build; KOPILKA_BIN=path to use another binary
#   KOPILKA_FUZZ_EXAMPLES=50 bash scripts/fuzz-api.sh
#
# Two runs: the admin key over every operation, then a pos key (bound to a store) over the
# operations a till uses. Revoking keys is left out of both, since the fuzzer would revoke
# the key it is using and see only 401s afterwards. `.ci/run` calls this after scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${KOPILKA_FUZZ_EXAMPLES:-20}
CHECKS=not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance

ensure_schemathesis() {
  if command -v schemathesis >/dev/null 2>&1 && schemathesis --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
    return 0
  fi
  echo "fuzz-api.sh: installing schemathesis $SCHEMATHESIS_VERSION from PyPI" >&2
  python3 -m pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" ||
    python3 -m pip install -q --disable-pip-version-check --break-system-packages "schemathesis==$SCHEMATHESIS_VERSION"
  hash -r
  command -v schemathesis >/dev/null 2>&1 || { echo "fuzz-api.sh: schemathesis is not on PATH after installing it" >&2; exit 1; }
}
ensure_schemathesis

BIN=${KOPILKA_BIN:-}
if [ -z "$BIN" ]; then
  cargo build -q -p kopilka
  BIN="${CARGO_TARGET_DIR:-target}/debug/kopilka"
fi

# Everything lives in a folder of its own (not scripts/test.sh's kopilka-tests), and the
# server is stopped however this script ends.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kopilka-fuzz.XXXXXX")
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export KOPILKA_LOG=warn
DB="sqlite:$WORK/fuzz.db"
TENANT=$("$BIN" tenant create --name "Fuzz" --template retail --json --database-url "$DB")
ADMIN_KEY=$(printf '%s' "$TENANT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
"$BIN" serve --listen "127.0.0.1:$PORT" --database-url "$DB" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fs "$BASE/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "fuzz-api.sh: the server exited:" >&2; cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.1
done
curl -fs "$BASE/healthz" >/dev/null || { echo "fuzz-api.sh: the server does not answer" >&2; exit 1; }

api() { # METHOD PATH BODY -> the answer; fails on a non-2xx
  curl -fsS -X "$1" -H "Authorization: Bearer $ADMIN_KEY" -H "Content-Type: application/json" "$BASE/api/v1$2" -d "$3"
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
STORE_ID=$(api POST /stores '{"code": "F1", "name": "Fuzz"}' | field id)
POS_KEY=$(api POST /api-keys "{\"role\": \"pos\", \"store_id\": \"$STORE_ID\", \"till_id\": \"T1\"}" | field key)
# A few members with points, so that some generated requests reach real rows.
for i in 1 2 3; do
  MEMBER=$(api POST /members "{\"external_id\": \"fuzz-$i\"}" | field id)
  api POST "/members/$MEMBER/adjustments" '{"points": 1000, "reason": "fuzz"}' >/dev/null
done

SEED_ARGS=()
if [ -n "${KOPILKA_FUZZ_SEED:-}" ]; then SEED_ARGS=(--seed "$KOPILKA_FUZZ_SEED"); fi
# One worker: with several threads, hypothesis's lambda-source parsing can hit CPython
# 3.11's "AST constructor recursion depth mismatch" (a SystemError inside the tool, not a
# finding). A run that fails with only that error, and no failure of ours, is run again once.
run() { # NAME KEY [filters...]
  local name=$1
  local log="$WORK/schemathesis-$name.log"
  for attempt in 1 2; do
    if run_once "$@" 2>&1 | tee "$log"; then return 0; fi
    if [ "$attempt" = 1 ] && grep -q "AST constructor recursion depth mismatch" "$log" &&
      ! grep -qE "^=+ FAILURES =+$" "$log" && ! grep -E "^=+ .* in [0-9.]+s =+$" "$log" | grep -q "fail"; then
      echo "fuzz-api.sh: schemathesis hit a CPython AST error of its own (not a finding); running it again" >&2
      continue
    fi
    return 1
  done
  return 1
}
run_once() { # NAME KEY [filters...]
  local name=$1 key=$2
  shift 2
  echo "fuzz-api.sh: schemathesis with the $name key, $EXAMPLES examples per operation" >&2
  schemathesis run "$BASE/api/v1/openapi.json" \
    -H "Authorization: Bearer $key" \
    --checks "$CHECKS" \
    --max-examples "$EXAMPLES" \
    --workers 1 \
    --request-timeout 30 \
    --no-color \
    --exclude-path-regex '^/api/v1/api-keys/' \
    "${SEED_ARGS[@]}" \
    "$@"
}
status=0
run admin "$ADMIN_KEY" || status=1
run pos "$POS_KEY" --include-path-regex '^/api/v1/(pos/|members)' || status=1
if grep -q "panicked" "$WORK/server.log"; then
  echo "fuzz-api.sh: the server panicked:" >&2
  grep -B2 -A10 "panicked" "$WORK/server.log" >&2
  status=1
fi
kill -0 "$SERVER_PID" 2>/dev/null || { echo "fuzz-api.sh: the server died during the run" >&2; status=1; }
exit $status
