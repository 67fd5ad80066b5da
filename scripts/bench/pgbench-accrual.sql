-- pgbench: one transaction per accrual. A ledger row with a unique key, the member's
-- balance updated, and the new balance read back, as a till's answer would need.
--   pgbench -n -M prepared -c 64 -j 2 -T 20 -D members=100000 -f pgbench-accrual.sql DB
-- The key is a random 63-bit integer: a collision (a failed transaction, which pgbench
-- reports) has a probability of about 10^-9 per million transactions.
\set member random(1, :members)
\set points random(1, 500)
\set entry_key random(1, 9223372036854775806)
BEGIN;
INSERT INTO bench_ledger (entry_key, member_id, points, created_at) VALUES (:entry_key, :member, :points, now());
UPDATE bench_balances SET points = points + :points, seq = seq + 1, updated_at = now() WHERE member_id = :member;
SELECT points FROM bench_balances WHERE member_id = :member;
END;
