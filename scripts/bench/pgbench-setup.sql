-- The pgbench baseline's tables: one balance row per member and an append-only ledger
-- with a unique key per entry, shaped like the smallest possible loyalty engine.
-- Run once on a fresh database:  psql -v ON_ERROR_STOP=1 -v members=100000 -f pgbench-setup.sql
\if :{?members}
\else
  \set members 100000
\endif
DROP TABLE IF EXISTS bench_ledger;
DROP TABLE IF EXISTS bench_balances;
CREATE TABLE bench_balances (
    member_id BIGINT PRIMARY KEY,
    points BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE bench_ledger (
    entry_key BIGINT PRIMARY KEY,
    member_id BIGINT NOT NULL,
    points BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
INSERT INTO bench_balances (member_id, points, seq, updated_at)
SELECT g, 100000, 0, now() FROM generate_series(1, :members) AS g;
VACUUM ANALYZE bench_balances;
