-- The web UI (issue 6): staff accounts, browser sessions and one-time login links.
-- TEXT and BIGINT only; tenant_id first in every key; ids made by the application.

-- Staff of a tenant who log in to the admin console. `email` is lower-cased and unique
-- within the tenant (the same person may be staff of several tenants). `password_hash`
-- is an argon2id PHC string, NULL until the person sets a password through a login link.
-- `role` is owner, marketer, cashier or analyst (crates/web/src/staff.rs maps it onto the
-- API's admin, pos and analyst permissions).
CREATE TABLE staff_users (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT,
    password_hash TEXT,
    role TEXT NOT NULL,
    disabled_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX staff_users_email ON staff_users (tenant_id, email);
-- Login finds the tenant from the email (the one lookup that does not take a tenant).
CREATE INDEX staff_users_login ON staff_users (email);

-- Browser sessions of every web area: `kind` is staff (the admin console), member (the
-- member portal) or till (the cashier terminal); `subject_id` is the staff user, the
-- member or the till's API key. Only the SHA-256 of the random cookie token is stored.
-- `data` holds what an area keeps per session (JSON), such as the till's open receipt.
CREATE TABLE web_sessions (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX web_sessions_token ON web_sessions (token_hash);
CREATE INDEX web_sessions_subject ON web_sessions (tenant_id, kind, subject_id);

-- One-time login links for staff (first login of an owner made on the command line, a
-- forgotten password). Only the SHA-256 of the token is stored; a link works once.
CREATE TABLE login_links (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    staff_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX login_links_token ON login_links (token_hash);
