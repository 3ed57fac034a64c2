-- +goose Up
CREATE TABLE auth_account (
    id            uuid PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text,                          -- argon2id PHC string; NULL for provider-only accounts
    locale        text        NOT NULL DEFAULT 'en',
    roles         text[]      NOT NULL DEFAULT '{listener}',
    confirmed_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Emails are unique case-insensitively.
CREATE UNIQUE INDEX auth_account_email ON auth_account (lower(email));

-- External identities linked to an account: (provider, subject) is the
-- provider's stable user id, never the email.
CREATE TABLE auth_identity (
    provider   text        NOT NULL,
    subject    text        NOT NULL,
    account_id uuid        NOT NULL REFERENCES auth_account (id) ON DELETE CASCADE,
    email      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);
CREATE INDEX auth_identity_account ON auth_identity (account_id);

-- Single-use, expiring confirmation and password-reset tokens; only their
-- SHA-256 is stored, so a database leak does not leak usable links.
CREATE TABLE auth_onetime (
    hash       bytea PRIMARY KEY,
    kind       text        NOT NULL CHECK (kind IN ('confirm', 'reset')),
    account_id uuid        NOT NULL REFERENCES auth_account (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_onetime_account ON auth_onetime (account_id, kind);

-- Ed25519 signing keys shared by every replica. The newest key signs;
-- retired keys stay published in the JWKS until tokens they signed expired.
CREATE TABLE auth_signing_key (
    kid         text PRIMARY KEY,
    private_key bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz,
    publish_until timestamptz
);

-- Premium entitlement as last announced by the user function (UserUpdated).
-- version is ours (ent_ver in access tokens); source_version is the event's.
CREATE TABLE auth_entitlement (
    account_id     uuid PRIMARY KEY,
    premium        boolean     NOT NULL DEFAULT false,
    premium_until  timestamptz,
    version        bigint      NOT NULL DEFAULT 0,
    source_version bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE auth_entitlement;
DROP TABLE auth_signing_key;
DROP TABLE auth_onetime;
DROP TABLE auth_identity;
DROP TABLE auth_account;
