-- Kopilka core schema. Portable: TEXT and BIGINT only (ids are UUIDv7 strings, times are
-- Unix seconds, flags are 0/1); tenant_id first in every key; no SERIAL, no triggers.

CREATE TABLE tenants (
    id TEXT NOT NULL PRIMARY KEY,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX tenants_slug ON tenants (slug);

CREATE TABLE api_keys (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    store_id TEXT,
    till_id TEXT,
    label TEXT,
    expires_at BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash);

CREATE TABLE programs (
    tenant_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    config TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE stores (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    lat TEXT,
    lon TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX stores_code ON stores (tenant_id, code);

CREATE TABLE members (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    card_number TEXT NOT NULL,
    qr_token TEXT NOT NULL,
    phone TEXT,
    email TEXT,
    external_id TEXT,
    name TEXT,
    birthday TEXT,
    referral_code TEXT,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX members_card ON members (tenant_id, card_number);
CREATE UNIQUE INDEX members_qr ON members (tenant_id, qr_token);
CREATE UNIQUE INDEX members_phone ON members (tenant_id, phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX members_email ON members (tenant_id, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX members_external ON members (tenant_id, external_id) WHERE external_id IS NOT NULL;

-- Consent records: appended, the newest per kind is current.
CREATE TABLE consents (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    granted BIGINT NOT NULL,
    source TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX consents_member ON consents (tenant_id, member_id);

-- Projection of the ledger, one row per member; also the row that is locked to
-- serialise a member's spending.
CREATE TABLE balances (
    tenant_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    points BIGINT NOT NULL,
    held BIGINT NOT NULL,
    pending BIGINT NOT NULL,
    debt BIGINT NOT NULL,
    lifetime_earned BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    next_due_at BIGINT,
    tier_code TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, member_id)
);
CREATE INDEX balances_due ON balances (tenant_id, next_due_at);

-- One lot per credit.
CREATE TABLE lots (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    source TEXT NOT NULL,
    ref_id TEXT,
    points_initial BIGINT NOT NULL,
    points_remaining BIGINT NOT NULL,
    is_pending BIGINT NOT NULL,
    available_at BIGINT NOT NULL,
    expires_at BIGINT,
    seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX lots_member ON lots (tenant_id, member_id, points_remaining);

-- Which lot paid how many points, for what. `returned` counts points later given back.
CREATE TABLE consumptions (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    lot_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref_id TEXT NOT NULL,
    points BIGINT NOT NULL,
    returned BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX consumptions_ref ON consumptions (tenant_id, ref_id);
CREATE INDEX consumptions_lot ON consumptions (tenant_id, lot_id);

CREATE TABLE holds (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    receipt_pk TEXT NOT NULL,
    points BIGINT NOT NULL,
    status TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX holds_member ON holds (tenant_id, member_id, status);

-- The member-visible, append-only ledger. `seq` is the member's posting order.
CREATE TABLE ledger_entries (
    tenant_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    points BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL,
    receipt_id TEXT,
    reason TEXT,
    ref_id TEXT,
    PRIMARY KEY (tenant_id, member_id, seq)
);

CREATE TABLE receipts (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    store_id TEXT NOT NULL,
    till_id TEXT NOT NULL,
    receipt_id TEXT NOT NULL,
    member_id TEXT,
    status TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    program_version BIGINT NOT NULL,
    tier TEXT,
    body_hash TEXT NOT NULL,
    answer TEXT NOT NULL,
    total_minor BIGINT NOT NULL,
    payable_minor BIGINT NOT NULL,
    refunded_payable_minor BIGINT NOT NULL,
    points_redeemed BIGINT NOT NULL,
    points_earned BIGINT NOT NULL,
    earn_lot_id TEXT,
    expired_exempt BIGINT NOT NULL,
    hold_id TEXT,
    created_at BIGINT NOT NULL,
    committed_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX receipts_key ON receipts (tenant_id, store_id, till_id, receipt_id);
CREATE INDEX receipts_member ON receipts (tenant_id, member_id, occurred_at);

CREATE TABLE receipt_lines (
    tenant_id TEXT NOT NULL,
    receipt_pk TEXT NOT NULL,
    line_no BIGINT NOT NULL,
    sku TEXT,
    name TEXT,
    category TEXT,
    qty_kind TEXT NOT NULL,
    quantity_base BIGINT NOT NULL,
    total_minor BIGINT NOT NULL,
    discount_minor BIGINT NOT NULL,
    redeemed_minor BIGINT NOT NULL,
    points_redeemed BIGINT NOT NULL,
    payable_minor BIGINT NOT NULL,
    points_earned BIGINT NOT NULL,
    refunded_base BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, receipt_pk, line_no)
);

CREATE TABLE refunds (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    store_id TEXT NOT NULL,
    refund_id TEXT NOT NULL,
    receipt_pk TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    answer TEXT NOT NULL,
    refund_minor BIGINT NOT NULL,
    payable_minor BIGINT NOT NULL,
    debt_added BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX refunds_key ON refunds (tenant_id, store_id, refund_id);
CREATE INDEX refunds_receipt ON refunds (tenant_id, receipt_pk);

-- Adjustments and transfers: the idempotency record and the stored answer.
CREATE TABLE adjustments (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    adjustment_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    points BIGINT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX adjustments_key ON adjustments (tenant_id, adjustment_id);

CREATE TABLE transfers (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    transfer_id TEXT NOT NULL,
    from_member_id TEXT NOT NULL,
    to_member_id TEXT NOT NULL,
    points BIGINT NOT NULL,
    body_hash TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX transfers_key ON transfers (tenant_id, transfer_id);

-- Who changed what, when, why.
CREATE TABLE audit_log (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    details TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Member history events (tier changes and more).
CREATE TABLE member_events (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX member_events_member ON member_events (tenant_id, member_id, occurred_at);

-- Background jobs. A job is unique per (tenant, kind, key) while it waits; it is deleted
-- when done. Claimed by setting locked_until.
CREATE TABLE jobs (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    job_key TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    last_error TEXT,
    PRIMARY KEY (tenant_id, kind, job_key)
);
CREATE INDEX jobs_due ON jobs (run_at);
