#!/usr/bin/env bash
# Kopilka's checkouts against PostgreSQL's own baseline, on the same server in the same run:
# pgbench with one transaction per accrual (scripts/bench/pgbench-accrual.sql: a ledger row
# with a unique key, the member's balance updated and read back), then `kopilka bench` with
# the same number of clients on a fresh database. Prints both, their latencies and the ratio.
#
#   bash scripts/bench-vs-pgbench.sh [--pg postgres://USER@HOST:PORT] [--clients 64]
#        [--duration 20] [--warmup 3] [--members 100000] [--sqlite] [--bin PATH]
#
# --pg is a server URL without a database name (default postgres://postgres@127.0.0.1:5432);
# both sides get a fresh database on it (kbench_...), dropped at the end. --sqlite also runs
# `kopilka bench` on an embedded SQLite file with the same clients. The binary is built with
# `cargo build --release -p kopilka` unless --bin names one. Not a test: `.ci/run` never
# runs it. Needs psql and pgbench (Debian: postgresql-client).
set -euo pipefail
cd "$(dirname "$0")/.."

PG=postgres://postgres@127.0.0.1:5432
CLIENTS=64
DURATION=20
WARMUP=3
MEMBERS=100000
SQLITE=0
BIN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --pg) PG=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --members) MEMBERS=$2; shift 2 ;;
    --sqlite) SQLITE=1; shift ;;
    --bin) BIN=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench-vs-pgbench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
PG=${PG%/}
case "$PG" in
  postgres://*/*|postgresql://*/*) echo "bench-vs-pgbench.sh: --pg takes a server URL without a database name" >&2; exit 2 ;;
esac
for t in psql pgbench python3; do
  command -v "$t" >/dev/null 2>&1 || { echo "bench-vs-pgbench.sh: $t is required" >&2; exit 1; }
done
if [ -z "$BIN" ]; then
  cargo build --release -q -p kopilka
  BIN="${CARGO_TARGET_DIR:-target}/release/kopilka"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kopilka-vs-pgbench.XXXXXX")
PGB_DB="kbench_pgbench_$(date +%s)_$$"
cleanup() {
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $PGB_DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ {printf "%d MB", $2/1024}' /proc/meminfo)"
echo "postgres: $(psql "$PG/postgres" -Atc 'SELECT version()' | cut -d, -f1); synchronous_commit=$(psql "$PG/postgres" -Atc 'SHOW synchronous_commit'), fsync=$(psql "$PG/postgres" -Atc 'SHOW fsync')"
echo "clients: $CLIENTS, warm-up ${WARMUP}s, measured ${DURATION}s, members: $MEMBERS"
echo

# 1. pgbench: one transaction per accrual.
psql "$PG/postgres" -qc "CREATE DATABASE $PGB_DB"
psql "$PG/$PGB_DB" -q -v ON_ERROR_STOP=1 -v members="$MEMBERS" -f scripts/bench/pgbench-setup.sql >/dev/null 2>&1
psql "$PG/$PGB_DB" -qc "CHECKPOINT" >/dev/null 2>&1 || true
PGBENCH=(pgbench -n -M prepared -c "$CLIENTS" -j 2 -D "members=$MEMBERS" -f scripts/bench/pgbench-accrual.sql)
echo "\$ ${PGBENCH[*]} -T $DURATION -l $PG/$PGB_DB"
"${PGBENCH[@]}" -T "$WARMUP" "$PG/$PGB_DB" >/dev/null 2>&1
"${PGBENCH[@]}" -T "$DURATION" -l --log-prefix "$WORK/pgb" "$PG/$PGB_DB" >"$WORK/pgbench.out" 2>&1 ||
  { cat "$WORK/pgbench.out" >&2; exit 1; }
PGB_TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$WORK/pgbench.out")
PGB_FAILED=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$WORK/pgbench.out")
# Per-transaction log: column 3 is the latency in microseconds.
read -r PGB_P50 PGB_P99 PGB_MAX < <(cat "$WORK"/pgb.* | awk '{print $3}' | sort -n | awk '
  {a[NR]=$1} END {if (NR==0) {print "0 0 0"; exit}
  i50=int((NR-1)*0.50+0.5)+1; i99=int((NR-1)*0.99+0.5)+1;
  printf "%.2f %.2f %.2f\n", a[i50]/1000, a[i99]/1000, a[NR]/1000}')
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $PGB_DB WITH (FORCE)" >/dev/null 2>&1 || true

# 2. kopilka bench on a fresh database of the same server.
KOPILKA=("$BIN" bench --db "$PG" --clients "$CLIENTS" --duration-s "$DURATION" --warmup-s "$WARMUP" --members "$MEMBERS" --json)
echo "\$ ${KOPILKA[*]}"
"${KOPILKA[@]}" >"$WORK/kopilka-pg.json"
if [ "$SQLITE" = 1 ]; then
  KOPILKA_SQLITE=("$BIN" bench --clients "$CLIENTS" --duration-s "$DURATION" --warmup-s "$WARMUP" --members "$MEMBERS" --json)
  echo "\$ ${KOPILKA_SQLITE[*]}"
  "${KOPILKA_SQLITE[@]}" >"$WORK/kopilka-sqlite.json"
fi
echo

python3 - "$WORK" "$PGB_TPS" "$PGB_P50" "$PGB_P99" "$PGB_MAX" "${PGB_FAILED:-0}" "$SQLITE" <<'EOF'
import json, os, sys
work, tps, p50, p99, pmax, failed, sqlite = sys.argv[1:]
tps = float(tps)
rows = [("pgbench accrual (PostgreSQL)", tps, float(p50), float(p99), float(pmax), int(failed), "")]
def kopilka(name, path):
    r = json.load(open(path))
    run, lat = r["run"], r["run"]["latency_ms"]
    extra = "RSS peak %s MB; members loaded in %s s" % (r["server"]["rss_peak_mb"], r["load"]["seconds"])
    rows.append((name, run["checkouts_per_s"], lat["p50"], lat["p99"], lat["max"], run["errors"], extra))
    return run["checkouts_per_s"]
k_pg = kopilka("kopilka checkout (PostgreSQL)", os.path.join(work, "kopilka-pg.json"))
if sqlite == "1":
    kopilka("kopilka checkout (SQLite)", os.path.join(work, "kopilka-sqlite.json"))
print("| run | per second | p50 ms | p99 ms | max ms | errors | |")
print("|---|---:|---:|---:|---:|---:|---|")
for name, t, a, b, c, e, x in rows:
    print("| %s | %.0f | %.2f | %.2f | %.2f | %d | %s |" % (name, t, a, b, c, e, x))
print()
print("ratio kopilka / pgbench on PostgreSQL: %.2f (target: at least 2.00)" % (k_pg / tps if tps else 0))
EOF
# The full reports (server CPU share, the load generator's, the database's settings).
echo
echo "kopilka bench --json, PostgreSQL: $(cat "$WORK/kopilka-pg.json")"
if [ "$SQLITE" = 1 ]; then echo "kopilka bench --json, SQLite: $(cat "$WORK/kopilka-sqlite.json")"; fi
