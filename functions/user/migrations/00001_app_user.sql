-- +goose Up
-- The user's entitlement as the saga sees it. version increases with every
-- change, so consumers of UserUpdated (auth) can ignore stale ones.
CREATE TABLE app_user (
    user_id       text PRIMARY KEY,
    is_premium    boolean     NOT NULL DEFAULT false,
    premium_until timestamptz,
    version       bigint      NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE app_user;
