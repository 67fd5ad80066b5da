-- The rewards catalogue: rewards bought with points, and their redemptions.
-- Portable like 0001: TEXT and BIGINT only, tenant_id first in every key.

-- `stock` is the number of units offered (null: unlimited); `redeemed_count` counts the
-- redemptions that are issued or fulfilled. A redemption takes a unit with one
-- conditional UPDATE (redeemed_count < stock), so stock is never oversold, and a change
-- of `stock` by an admin never loses a concurrent redemption's count.
-- `tiers` is a JSON array of tier codes (empty: every member).
CREATE TABLE rewards (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    kind TEXT NOT NULL,
    campaign_id TEXT,
    points_price BIGINT NOT NULL,
    stock BIGINT,
    redeemed_count BIGINT NOT NULL,
    valid_from BIGINT,
    valid_to BIGINT,
    tiers TEXT NOT NULL,
    per_member_limit BIGINT,
    active BIGINT NOT NULL,
    image_url TEXT,
    archived_at BIGINT,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
-- Codes are unique among the rewards that are not archived, so an archived reward's code
-- may be used again.
CREATE UNIQUE INDEX rewards_code ON rewards (tenant_id, code) WHERE archived_at IS NULL;

-- One row per redemption. `redemption_id` is the client's idempotency key; `code` is the
-- random code handed to the member. status: issued, fulfilled, cancelled.
CREATE TABLE reward_redemptions (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    redemption_id TEXT NOT NULL,
    reward_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    code TEXT NOT NULL,
    points BIGINT NOT NULL,
    status TEXT NOT NULL,
    store_id TEXT,
    actor TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    fulfilled_at BIGINT,
    cancelled_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX reward_redemptions_key ON reward_redemptions (tenant_id, redemption_id);
CREATE UNIQUE INDEX reward_redemptions_code ON reward_redemptions (tenant_id, code);
CREATE INDEX reward_redemptions_member ON reward_redemptions (tenant_id, member_id, reward_id);
CREATE INDEX reward_redemptions_status ON reward_redemptions (tenant_id, status);
