-- Cards and passes (issue 4): card design per programme, the tenant's own wallet keys,
-- Apple pass web-service registrations, pass change marks, one-time codes, spent rotating
-- QR codes and enrolments waiting for confirmation. TEXT and BIGINT only; tenant_id first.

CREATE TABLE card_settings (
    tenant_id TEXT NOT NULL PRIMARY KEY,
    -- 32 random bytes (hex). Derives each member's pass authentication token, public card
    -- link and rotating-code key, so none of those is stored. Never returned or logged.
    secret TEXT NOT NULL,
    design TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE card_images (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    png TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

CREATE TABLE wallet_keys (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- apple: {"cert_pem", "key_pem", "wwdr_pem"}; google: {"issuer_id", "service_account"}.
    -- Private keys: never returned by the API, never logged.
    material TEXT NOT NULL,
    label TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

CREATE TABLE pass_registrations (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    pass_type_id TEXT NOT NULL,
    serial TEXT NOT NULL,
    push_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, device_id, pass_type_id, serial)
);
CREATE INDEX pass_registrations_serial ON pass_registrations (tenant_id, serial);

CREATE TABLE pass_updates (
    tenant_id TEXT NOT NULL,
    serial TEXT NOT NULL,
    -- What the pass shows (balance, tier), to notice a change, and when it last changed,
    -- in milliseconds: the web service's update tag, which must tell apart two changes
    -- within one second.
    fingerprint TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, serial)
);

CREATE TABLE otp_codes (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX otp_codes_member ON otp_codes (tenant_id, member_id, created_at);

CREATE TABLE qr_spent (
    tenant_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    step BIGINT NOT NULL,
    spent_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, member_id, step)
);

CREATE TABLE enrolments (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    -- The form as submitted (name, phone or email, birthday, consents), until confirmed.
    form TEXT NOT NULL,
    channel TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    member_id TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
