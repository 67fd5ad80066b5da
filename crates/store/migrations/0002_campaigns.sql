-- Campaign engine, coupons, stamp cards, cashback wallet, action events, product catalogue.
-- TEXT and BIGINT only; tenant_id first in every key (see STACK.md).

-- Bumped on every campaign or coupon-series change, so servers reload their cached set.
CREATE TABLE campaign_generations (
    tenant_id TEXT NOT NULL PRIMARY KEY,
    generation BIGINT NOT NULL
);

CREATE TABLE campaigns (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    code TEXT NOT NULL,
    spec TEXT NOT NULL,
    archived BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX campaigns_code ON campaigns (tenant_id, code);

-- Budget counters: member_id '' is the campaign's total, otherwise one member's share.
-- Reserved (held) receipts count too, and give their share back when released.
CREATE TABLE campaign_usage (
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    points BIGINT NOT NULL,
    money_minor BIGINT NOT NULL,
    uses BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, member_id)
);

-- What each campaign gave on each receipt (status held, committed or released).
CREATE TABLE receipt_campaigns (
    tenant_id TEXT NOT NULL,
    receipt_pk TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    coupon_id TEXT,
    points BIGINT NOT NULL,
    money_minor BIGINT NOT NULL,
    stamps_every BIGINT NOT NULL,
    stamp_lines TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- 1 when the record was added to the campaign's budget counters (counters start when a
    -- campaign first has a budget; releasing an uncounted record must not take it off).
    counted BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, receipt_pk, campaign_id)
);
CREATE INDEX receipt_campaigns_coupon ON receipt_campaigns (tenant_id, coupon_id, member_id);

CREATE TABLE coupons (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    code TEXT NOT NULL,
    member_id TEXT,
    max_uses BIGINT,
    per_member_limit BIGINT,
    uses BIGINT NOT NULL,
    starts_at BIGINT,
    expires_at BIGINT,
    status TEXT NOT NULL,
    batch TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX coupons_code ON coupons (tenant_id, code);
CREATE INDEX coupons_campaign ON coupons (tenant_id, campaign_id);
CREATE INDEX coupons_member ON coupons (tenant_id, member_id);

-- Stamp progress per member and stamp-card campaign (may go below 0 after a refund).
CREATE TABLE stamps (
    tenant_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    stamps BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, member_id, campaign_id)
);

-- The cashback wallet: money beside points, with its own append-only ledger.
CREATE TABLE wallets (
    tenant_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    balance_minor BIGINT NOT NULL,
    held_minor BIGINT NOT NULL,
    debt_minor BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, member_id)
);
CREATE TABLE wallet_entries (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    receipt_id TEXT,
    ref_id TEXT,
    reason TEXT,
    occurred_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    -- How much of a `cashback` entry paid off wallet debt (a void makes it owed again).
    debt_paid BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX wallet_entries_seq ON wallet_entries (tenant_id, member_id, seq);

-- Action events (reviews, surveys, …): idempotent on the event id.
CREATE TABLE action_events (
    tenant_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    answer TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE TABLE event_types (
    tenant_id TEXT NOT NULL,
    type TEXT NOT NULL,
    schema TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, type)
);

-- Segment tags and custom attributes used by campaign conditions and audiences.
CREATE TABLE member_tags (
    tenant_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (tenant_id, member_id, tag)
);
CREATE TABLE member_attributes (
    tenant_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    attributes TEXT NOT NULL,
    PRIMARY KEY (tenant_id, member_id)
);

-- The product catalogue (I6): a line without a category takes its sku's.
CREATE TABLE products (
    tenant_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    name TEXT,
    category TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, sku)
);

ALTER TABLE receipt_lines ADD COLUMN wallet_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE receipt_lines ADD COLUMN cashback_minor BIGINT NOT NULL DEFAULT 0;
